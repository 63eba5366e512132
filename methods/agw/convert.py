"""Official AGW checkpoints (mangye16/Cross-Modal-Re-ID-baseline ``embed_net``, ``--method agw``)
-> harness ``AGW`` state dict.

Official key -> harness key:
  visible_module.visible.{conv1,bn1}.*  -> backbone.visible.stem.{0,1}.*
  thermal_module.thermal.{conv1,bn1}.*  -> backbone.infrared.stem.{0,1}.*
  base_resnet.base.layer{1-4}.*         -> backbone.shared.layer{1-4}.*
  NL_{s}.{i}.*                          -> non_local.layer{s}.{i}.*     (s = 2, 3 for AGW)
  bottleneck.*, classifier.weight       -> head.bottleneck.*, head.classifier.weight
Dropped: the three ResNet-50 copies' parts the official forward never calls
(``visible_module.visible.layer*``, ``thermal_module.thermal.layer*``,
``base_resnet.base.{conv1,bn1}``).
Anything else, a missing used tensor or a shape mismatch is refused. The map is
``harness.convert``'s ``embed_net`` map, which CAJ (same ``model.py``) shares.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from harness.convert import (
    EMBED_NET_PREFIXES,
    convert_embed_net,
    embed_net_key,
    load_official_state,
    map_embed_net,
)

PREFIXES = EMBED_NET_PREFIXES
harness_key = embed_net_key


def load_official(src: str | Path, trusted: bool = False) -> dict[str, Tensor]:
    """The ``embed_net`` state dict in ``src``: bare, or under ``'net'`` as train.py saves it."""
    return load_official_state(src, 'AGW', 'an embed_net state dict', trusted, wrappers=('net',))


def convert_state_dict(
    official: dict[str, Tensor], target: dict[str, Tensor]
) -> tuple[dict[str, Tensor], list[str]]:
    """``official`` mapped onto the keys and shapes of ``target``; also returns the dropped keys."""
    return map_embed_net(
        official, target, 'an official AGW embed_net checkpoint (ResNet-50, --method agw)'
    )


def convert(src: str, dst: str, trusted: bool = False) -> dict:
    """Converts ``src`` into a harness state dict at ``dst`` (``weights_only`` unless trusted)."""
    from methods.agw.model import AGW

    return convert_embed_net(
        src,
        dst,
        'agw',
        'AGW',
        lambda n: AGW(num_classes=n, backbone=dict(pretrained=False)),
        trusted,
    )
