"""Convert an official MPANet checkpoint (DoubtedSteam/MPANet ``Baseline``) to harness key names.

The released model is a plain ``state_dict`` of ``models.baseline.Baseline`` (saved by ignite's
``ModelCheckpoint(save_as_state_dict=True)``); ``{'model': ...}`` / ``{'state_dict': ...}`` wrappers
and DataParallel ``module.`` prefixes are accepted too. The conversion is strict: every official
tensor must map to a harness tensor of the same shape and every harness tensor must be covered.
"""

from __future__ import annotations

from collections import Counter

import torch
from torch import Tensor

from harness.convert import (
    UntrustedCheckpointError,
    load_official_state,
    rename_by_prefix,
    write_converted,
)

# Official key prefix -> harness key prefix; the first matching rule wins (MAMs before the trunk).
OFFICIAL_TO_HARNESS: tuple[tuple[str, str], ...] = (
    ('backbone.MAM3.channel_attention.', 'mam3.gate.'),
    ('backbone.MAM4.channel_attention.', 'mam4.gate.'),
    ('backbone.', 'backbone.'),  # conv1, bn1, layer1..layer4 (torchvision names)
    ('spatial_attention.', 'pattern_conv.'),  # 1x1 conv 2048 -> K pattern maps, with bias
    ('bn_neck.', 'neck.'),  # BNNeck (frozen zero bias)
    ('classifier.', 'classifier.'),  # shared identity classifier
    ('visible_classifier.', 'classifier_visible.'),
    ('infrared_classifier.', 'classifier_infrared.'),
    ('visible_classifier_.', 'mean_classifier_visible.'),  # EMA (mean-teacher) copies
    ('infrared_classifier_.', 'mean_classifier_infrared.'),
)
WRAPPER_KEYS = ('state_dict', 'model')
STAGE_DEPTHS = {(3, 4, 6, 3): 50, (3, 4, 23, 3): 101}


class CheckpointMismatch(ValueError):
    """The checkpoint is not a state dict of the official MPANet ``Baseline``."""


def harness_key(official: str) -> str | None:
    """Harness name of an official key, or ``None`` if no rule covers it."""
    return rename_by_prefix(official, OFFICIAL_TO_HARNESS)


def load_official(src: str, trusted: bool = False) -> dict[str, Tensor]:
    """The official state dict, unwrapped and without ``module.`` prefixes."""
    try:
        return load_official_state(
            src, 'MPANet', 'a Baseline state dict', trusted, wrappers=WRAPPER_KEYS
        )
    except UntrustedCheckpointError:
        raise
    except ValueError as err:
        raise CheckpointMismatch(str(err)) from err


def infer_model_args(state: dict[str, Tensor]) -> dict:
    """MPANet constructor arguments that reproduce the official model's shapes."""
    args: dict = dict(backbone=dict(depth=50, last_stride=1, pretrained=False, blocks=None))
    for key in ('classifier.weight', 'visible_classifier.weight', 'infrared_classifier.weight'):
        if key in state:
            args['num_classes'] = int(state[key].shape[0])
            break
    else:
        raise CheckpointMismatch(
            'the checkpoint has no classifier weight (classifier.weight / '
            'visible_classifier.weight); is it an MPANet Baseline trained with '
            'classification and mutual_learning on?'
        )
    if 'spatial_attention.weight' in state:
        args['num_patterns'] = int(state['spatial_attention.weight'].shape[0])
    gate = state.get('backbone.MAM3.channel_attention.0.weight')
    if gate is not None and gate.shape[0] > 0:
        args['mam_reduction'] = int(gate.shape[1] // gate.shape[0])
    counts = Counter()
    for key in state:
        parts = key.split('.')
        if (
            len(parts) > 3
            and parts[0] == 'backbone'
            and parts[1].startswith('layer')
            and parts[2].isdigit()
        ):
            counts[parts[1]] = max(counts[parts[1]], int(parts[2]) + 1)
    blocks = tuple(counts.get(f'layer{i}', 0) for i in range(1, 5))
    if blocks in STAGE_DEPTHS:
        args['backbone']['depth'] = STAGE_DEPTHS[blocks]
    elif min(blocks) > 0:
        args['backbone']['blocks'] = blocks
    return args


def expected_state(model_args: dict) -> dict[str, torch.Size]:
    """Key -> shape of the harness model's state dict, built without allocating weights."""
    from .model import MPANet  # heavy import only when converting

    with torch.device('meta'):
        model = MPANet(**model_args)
    return {k: v.shape for k, v in model.state_dict().items()}


def map_state(state: dict[str, Tensor], expected: dict[str, torch.Size]) -> dict[str, Tensor]:
    """Rename every official tensor; raise :class:`CheckpointMismatch` listing every problem."""
    out: dict[str, Tensor] = {}
    unexpected, shapes, misshapen = [], [], set()
    for key, value in state.items():
        new = harness_key(key)
        if new is None or new not in expected:
            unexpected.append(
                f'{key}'
                + (f' (-> {new}, not in the harness model)' if new else ' (no mapping rule)')
            )
            continue
        if value.shape != expected[new]:
            shapes.append(
                f'{key} -> {new}: checkpoint {tuple(value.shape)}, harness {tuple(expected[new])}'
            )
            misshapen.add(new)
            continue
        out[new] = value.detach().clone().contiguous()  # also un-aliases the official EMA copies
    inverse = {dst: src for src, dst in OFFICIAL_TO_HARNESS}
    missing = []
    for key in expected:
        if key not in out and key not in misshapen:
            src = next((o + key[len(h) :] for h, o in inverse.items() if key.startswith(h)), '?')
            missing.append(f'{key} (official {src})')
    if unexpected or missing or shapes:
        lines = ['the checkpoint does not match the MPANet model:']
        for title, items in (
            ('unexpected keys', unexpected),
            ('missing keys', missing),
            ('shape mismatches', shapes),
        ):
            if items:
                lines.append(
                    f'  {title} ({len(items)}): '
                    + '; '.join(items[:20])
                    + (f'; ... {len(items) - 20} more' if len(items) > 20 else '')
                )
        lines.append(
            '  expected a state dict of DoubtedSteam/MPANet models.baseline.Baseline with '
            'pattern_attention, modality_attention=2, mutual_learning and classification on '
            '(configs/SYSU.yml or RegDB.yml); see methods/mpanet/README.md for the key mapping'
        )
        raise CheckpointMismatch('\n'.join(lines))
    return out


def convert(src: str, dst: str, trusted: bool = False) -> dict:
    """Convert official checkpoint ``src`` into a harness state dict saved at ``dst``.

    ``dst`` holds ``{'state_dict': {name: tensor}, 'meta': ...}`` (loadable with
    ``weights_only=True``; see :func:`harness.convert.write_converted`). Returns a
    summary. ``trusted=True`` allows unpickling non-tensor objects; use it only for files you trust.
    """
    state = load_official(src, trusted=trusted)
    args = infer_model_args(state)
    converted = map_state(state, expected_state(args))
    return write_converted(
        converted,
        src,
        dst,
        'mpanet',
        args['num_classes'],
        tensors=len(converted),
        num_patterns=args.get('num_patterns', 6),
        backbone=args['backbone'],
        parameters=sum(
            v.numel()
            for k, v in converted.items()
            if v.is_floating_point() and not k.endswith(('running_mean', 'running_var'))
        ),
    )
