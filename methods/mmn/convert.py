"""Official MMN checkpoints (ZYK100/MMN ``embed_net``) -> harness ``MMN`` state dict.

Strict: every tensor the official forward uses is mapped, only the documented unused tensors are
dropped, and anything else (an unknown key, a missing used tensor, a shape mismatch) is refused.

Official key -> harness key:
  visible_module.visible.{conv1,bn1}.*  -> backbone.visible.stem.{0,1}.*
  thermal_module.thermal.{conv1,bn1}.*  -> backbone.infrared.stem.{0,1}.*
  base_resnet.base.layer{1-4}.*         -> backbone.shared.layer{1-4}.*
  bottleneck{k}.*                       -> bnnecks.{k-1}.*         (k = 1..4)
  classifier{k}.weight                  -> classifiers.{k-1}.weight
  encode1/fc1/bn1.*                     -> mmg.visible.encode/fc/bn.*
  encode2/fc2/bn2.*                     -> mmg.infrared.encode/fc/bn.*
  decode.*                              -> mmg.decode.*
Dropped (never called by the official forward): visible_module.visible.layer{1-4}.*,
thermal_module.thermal.layer{1-4}.*, base_resnet.base.{conv1,bn1}.*.
"""

from __future__ import annotations

import re

from torch import Tensor

from harness.convert import (
    load_official_state,
    map_state_dict,
    rename_by_prefix,
    write_converted,
)

# (official prefix, harness prefix); the first match wins.
PREFIX_MAP = (
    ('visible_module.visible.conv1.', 'backbone.visible.stem.0.'),
    ('visible_module.visible.bn1.', 'backbone.visible.stem.1.'),
    ('thermal_module.thermal.conv1.', 'backbone.infrared.stem.0.'),
    ('thermal_module.thermal.bn1.', 'backbone.infrared.stem.1.'),
    ('base_resnet.base.layer', 'backbone.shared.layer'),
    ('encode1.', 'mmg.visible.encode.'),
    ('fc1.', 'mmg.visible.fc.'),
    ('bn1.', 'mmg.visible.bn.'),
    ('encode2.', 'mmg.infrared.encode.'),
    ('fc2.', 'mmg.infrared.fc.'),
    ('bn2.', 'mmg.infrared.bn.'),
    ('decode.', 'mmg.decode.'),
)
HEAD_RE = re.compile(r'^(bottleneck|classifier)([1-9]\d*)\.(.+)$')
# Unused parts of the official module, each paired with the harness prefix holding a tensor of
# the same name and shape: a dropped key must be a real ResNet-50 tensor, not anything at all.
UNUSED = (
    (re.compile(r'^visible_module\.visible\.(layer[1-4]\..+)$'), 'backbone.shared.'),
    (re.compile(r'^thermal_module\.thermal\.(layer[1-4]\..+)$'), 'backbone.shared.'),
    (re.compile(r'^base_resnet\.base\.conv1\.(.+)$'), 'backbone.visible.stem.0.'),
    (re.compile(r'^base_resnet\.base\.bn1\.(.+)$'), 'backbone.visible.stem.1.'),
)
WRAPPER_KEYS = ('net', 'state_dict', 'model')


def harness_key(key: str) -> str | None:
    """Harness name of an official used tensor, or ``None`` if the key is not one."""
    head = HEAD_RE.match(key)
    if head:
        kind, k, rest = head.groups()
        return f'{"bnnecks" if kind == "bottleneck" else "classifiers"}.{int(k) - 1}.{rest}'
    return rename_by_prefix(key, PREFIX_MAP)


def unused_twin(key: str) -> str | None:
    """For a documented unused official tensor, the harness key of its same-shaped twin."""
    for pattern, prefix in UNUSED:
        m = pattern.match(key)
        if m:
            return prefix + m.group(1)
    return None


def load_official(src: str, trusted: bool = False) -> dict[str, Tensor]:
    """The official ``embed_net`` state dict in ``src`` (bare, ``{'net': ...}``,
    ``module.``-prefixed)."""
    return load_official_state(
        src, 'MMN', 'an embed_net state dict', trusted, wrappers=WRAPPER_KEYS
    )


def convert_state_dict(
    official: dict[str, Tensor], target: dict[str, Tensor]
) -> tuple[dict[str, Tensor], list[str]]:
    """Maps ``official`` onto the keys and shapes of ``target`` (a harness MMN state dict);
    returns the converted dict and the dropped official keys."""

    def is_unused(key: str, value: Tensor) -> bool:
        twin = unused_twin(key)
        return twin is not None and twin in target and value.shape == target[twin].shape

    return map_state_dict(
        official,
        target,
        harness_key,
        is_unused,
        'an official MMN embed_net checkpoint (ResNet-50, 4 stripes)',
        unexpected_hint=', neither used by the MMN forward nor a documented unused ResNet tensor',
    )


def num_classes_of(official: dict[str, Tensor]) -> int:
    weight = official.get('classifier1.weight')
    if weight is None or weight.dim() != 2:
        raise ValueError(
            "official MMN checkpoint lacks 'classifier1.weight' [num_classes, 2048]; "
            'is it an embed_net state dict?'
        )
    return int(weight.shape[0])


def convert(src: str, dst: str, trusted: bool = False) -> dict:
    """Converts the official checkpoint ``src`` into a harness state dict saved at ``dst``.

    Loads with ``weights_only=True`` unless ``trusted=True`` is given explicitly. Returns a summary
    (plain types) for the CLI.
    """
    from methods.mmn.model import MMN  # the target layout is the harness model itself

    official = load_official(src, trusted=trusted)
    num_classes = num_classes_of(official)
    target = MMN(num_classes=num_classes, backbone=dict(pretrained=False)).state_dict()
    out, dropped = convert_state_dict(official, target)
    return write_converted(
        out,
        src,
        dst,
        'mmn',
        num_classes,
        converted=len(out),
        dropped_unused=len(dropped),
        official_keys=len(official),
    )
