"""Official CAJ checkpoints (``ICCV21_CAJ/train_ext.py`` ``*_best.t``: ``{'net': embed_net
state dict, 'cmc', 'mAP', 'mINP', 'epoch'}``, lines 448-455) -> harness CAJ state dict.

CAJ's network is AGW's ``embed_net`` (same ``model.py``), so the key map is the harness's
``embed_net`` map (:mod:`harness.convert`): the visible/thermal stems, the shared layer1-4,
the non-local blocks ``NL_2``/``NL_3``, ``bottleneck`` and ``classifier`` are mapped; the unused
ResNet-50 parts of the three copies are dropped; anything else, a missing used tensor or a shape
mismatch is refused.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from harness.convert import convert_embed_net, load_official_state, map_embed_net

WHAT = 'an official CAJ embed_net checkpoint (ICCV21_CAJ, ResNet-50, --method adp)'


def load_official(src: str | Path, trusted: bool = False) -> dict[str, Tensor]:
    """The ``embed_net`` state dict in ``src``: bare, or under ``'net'`` (train_ext.py)."""
    return load_official_state(src, 'CAJ', 'an embed_net state dict', trusted, wrappers=('net',))


def convert_state_dict(
    official: dict[str, Tensor], target: dict[str, Tensor]
) -> tuple[dict[str, Tensor], list[str]]:
    """``official`` mapped onto the keys and shapes of ``target``; also returns the dropped keys."""
    return map_embed_net(official, target, WHAT)


def convert(src: str, dst: str, trusted: bool = False) -> dict:
    """Converts ``src`` into a harness checkpoint at ``dst`` (``weights_only`` unless trusted)."""
    from methods.caj.model import CAJ

    return convert_embed_net(
        src,
        dst,
        'caj',
        'CAJ',
        lambda n: CAJ(num_classes=n, backbone=dict(pretrained=False)),
        trusted,
    )
