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
Anything else, a missing used tensor or a shape mismatch is refused.
"""

from __future__ import annotations

import re
from pathlib import Path

from torch import Tensor

from harness.convert import (
    load_official_state,
    map_state_dict,
    rename_by_prefix,
    write_converted,
)

PREFIXES = (
    ('visible_module.visible.conv1.', 'backbone.visible.stem.0.'),
    ('visible_module.visible.bn1.', 'backbone.visible.stem.1.'),
    ('thermal_module.thermal.conv1.', 'backbone.infrared.stem.0.'),
    ('thermal_module.thermal.bn1.', 'backbone.infrared.stem.1.'),
    ('base_resnet.base.layer', 'backbone.shared.layer'),
    ('bottleneck.', 'head.bottleneck.'),
    ('classifier.', 'head.classifier.'),
)
NON_LOCAL = re.compile(r'^NL_([1-4])\.(\d+)\.(.+)$')
UNUSED = re.compile(
    r'^(visible_module\.visible\.layer[1-4]|thermal_module\.thermal\.layer[1-4]'
    r'|base_resnet\.base\.(conv1|bn1))\.'
)


def harness_key(key: str) -> str | None:
    """The harness name of an official tensor the AGW forward uses, else ``None``."""
    nl = NON_LOCAL.match(key)
    if nl:
        stage, index, rest = nl.groups()
        return f'non_local.layer{stage}.{index}.{rest}'
    return rename_by_prefix(key, PREFIXES)


def load_official(src: str | Path, trusted: bool = False) -> dict[str, Tensor]:
    """The ``embed_net`` state dict in ``src``: bare, or under ``'net'`` as train.py saves it."""
    return load_official_state(src, 'AGW', 'an embed_net state dict', trusted, wrappers=('net',))


def convert_state_dict(
    official: dict[str, Tensor], target: dict[str, Tensor]
) -> tuple[dict[str, Tensor], list[str]]:
    """``official`` mapped onto the keys and shapes of ``target``; also returns the dropped keys."""
    return map_state_dict(
        official,
        target,
        harness_key,
        lambda key, _: bool(UNUSED.match(key)),
        'an official AGW embed_net checkpoint (ResNet-50, --method agw)',
    )


def convert(src: str, dst: str, trusted: bool = False) -> dict:
    """Converts ``src`` into a harness state dict at ``dst`` (``weights_only`` unless trusted)."""
    from methods.agw.model import AGW

    official = load_official(src, trusted=trusted)
    weight = official.get('classifier.weight')
    if weight is None or weight.dim() != 2:
        raise ValueError(
            f"{src} lacks 'classifier.weight' [num_classes, 2048]; is it an AGW embed_net?"
        )
    num_classes = int(weight.shape[0])
    target = AGW(num_classes=num_classes, backbone=dict(pretrained=False)).state_dict()
    out, dropped = convert_state_dict(official, target)
    return write_converted(
        out,
        src,
        dst,
        'agw',
        num_classes,
        converted=len(out),
        dropped_unused=len(dropped),
        official_keys=len(official),
    )
