"""Official DEEN checkpoints (ZYK100/LLCM@886e27c ``DEEN/model.py`` ``embed_net``) -> harness
``DEEN`` state dict.

Official key -> harness key:
  visible_module.visible.{conv1,bn1}.*   -> backbone.visible.stem.{0,1}.*
  thermal_module.thermal.{conv1,bn1}.*   -> backbone.infrared.stem.{0,1}.*
  base_resnet.base.layer{1-4}.*          -> backbone.shared.layer{1-4}.*   (RegDB: layer1-3)
  MFA{k}.CNL.*, MFA{k}.PNL.*             -> mfa.layer{k}.cnl.*, mfa.layer{k}.pnl.*
  DEE.FC{b}{j}.weight                    -> dee.branches.{b-1}.convs.{j-1}.weight  (b, j = 1..)
  DEE.FC{b}.{weight,bias}                -> dee.branches.{b-1}.proj.*
  bottleneck.*, classifier.weight        -> head.bottleneck.*, head.classifier.weight
Dropped (never called by the official forward; each must be a ResNet-50 tensor of its shape):
``visible_module.visible.layer*``, ``thermal_module.thermal.layer*``,
``base_resnet.base.{conv1,bn1}``, and for RegDB ``base_resnet.base.layer4``.
The SYSU-MM01/LLCM network (``MFA3`` present) or the RegDB one is recognised from the keys.
Anything else, a missing used tensor or a shape mismatch is refused.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import torch
import torchvision
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
MFA = re.compile(r'^MFA([1-3])\.(CNL|PNL)\.(.+)$')
DEE_CONV = re.compile(r'^DEE\.FC([1-9])([1-9])\.(.+)$')
DEE_PROJ = re.compile(r'^DEE\.FC([1-9])\.(.+)$')
# The parts of the three ResNet-50 copies the official forward never calls, each paired with the
# harness prefix of a same-named tensor whose shape it must have (so only real trunk tensors drop).
UNUSED = (
    (re.compile(r'^visible_module\.visible\.(layer[1-4]\..+)$'), 'backbone.shared.'),
    (re.compile(r'^thermal_module\.thermal\.(layer[1-4]\..+)$'), 'backbone.shared.'),
    (re.compile(r'^base_resnet\.base\.conv1\.(.+)$'), 'backbone.visible.stem.0.'),
    (re.compile(r'^base_resnet\.base\.bn1\.(.+)$'), 'backbone.visible.stem.1.'),
    (re.compile(r'^base_resnet\.base\.(layer4\..+)$'), 'backbone.shared.'),  # RegDB only
)
WRAPPER_KEYS = ('net', 'state_dict', 'model')


def harness_key(key: str) -> str | None:
    """The harness name of an official tensor the DEEN forward uses, else ``None``."""
    mfa = MFA.match(key)
    if mfa:
        stage, part, rest = mfa.groups()
        return f'mfa.layer{stage}.{part.lower()}.{rest}'
    conv = DEE_CONV.match(key)
    if conv:
        branch, index, rest = conv.groups()
        return f'dee.branches.{int(branch) - 1}.convs.{int(index) - 1}.{rest}'
    proj = DEE_PROJ.match(key)
    if proj:
        branch, rest = proj.groups()
        return f'dee.branches.{int(branch) - 1}.proj.{rest}'
    return rename_by_prefix(key, PREFIXES)


@cache
def resnet50_shapes() -> dict[str, tuple[int, ...]]:
    """Names and shapes of torchvision's ResNet-50 tensors (built on the meta device: no memory)."""
    with torch.device('meta'):
        net = torchvision.models.resnet50(weights=None)
    return {k: tuple(v.shape) for k, v in net.state_dict().items() if not k.startswith('fc.')}


def unused_shape(key: str, target: dict[str, Tensor]) -> tuple[int, ...] | None:
    """For a documented unused official tensor, the shape it must have: that of its twin in
    ``target``, or the ResNet-50 one where the harness model has no twin (layer4 in the RegDB
    network, which is not built); ``None`` for any other key."""
    for pattern, prefix in UNUSED:
        m = pattern.match(key)
        if m:
            twin = target.get(prefix + m.group(1))
            return tuple(twin.shape) if twin is not None else resnet50_shapes().get(m.group(1))
    return None


def load_official(src: str | Path, trusted: bool = False) -> dict[str, Tensor]:
    """The ``embed_net`` state dict in ``src``: bare, or under ``'net'`` as train.py saves it
    (``module.`` prefixes removed)."""
    return load_official_state(
        src, 'DEEN', 'an embed_net state dict', trusted, wrappers=WRAPPER_KEYS
    )


def convert_state_dict(
    official: dict[str, Tensor], target: dict[str, Tensor]
) -> tuple[dict[str, Tensor], list[str]]:
    """``official`` mapped onto the keys and shapes of ``target``; also returns the dropped keys."""

    def is_unused(key: str, value: Tensor) -> bool:
        shape = unused_shape(key, target)
        return shape is not None and tuple(value.shape) == shape

    return map_state_dict(
        official,
        target,
        harness_key,
        is_unused,
        'an official DEEN embed_net checkpoint (ResNet-50)',
        unexpected_hint=', neither used by the DEEN forward nor a documented unused ResNet tensor',
    )


def variant_of(official: dict[str, Tensor]) -> str:
    """``'deen_sysu'`` (MFA3 and layer4 used: SYSU-MM01, LLCM) or ``'deen_regdb'``: the config
    whose model has the checkpoint's architecture."""
    if 'classifier.weight' not in official or official['classifier.weight'].dim() != 2:
        raise ValueError(
            "the checkpoint lacks 'classifier.weight' [num_classes, 2048 or 1024]; is it a DEEN "
            'embed_net state dict?'
        )
    return 'deen_sysu' if any(k.startswith('MFA3.') for k in official) else 'deen_regdb'


def convert(src: str, dst: str, trusted: bool = False) -> dict:
    """Converts ``src`` into a harness checkpoint at ``dst`` (``weights_only`` unless trusted)."""
    from methods.deen.model import build_deen

    official = load_official(src, trusted=trusted)
    config = variant_of(official)
    num_classes = int(official['classifier.weight'].shape[0])
    target = build_deen(num_classes, config, backbone=dict(pretrained=False)).state_dict()
    out, dropped = convert_state_dict(official, target)
    return write_converted(
        out,
        src,
        dst,
        'deen',
        num_classes,
        config=config,
        converted=len(out),
        dropped_unused=len(dropped),
        official_keys=len(official),
    )
