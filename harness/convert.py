"""Reading official checkpoints for the method converters, and writing what they convert.

Official files are read through :func:`harness.checkpoints.read_checkpoint` (``weights_only=True``
unless trusted); converted ones are written atomically as self-describing harness checkpoints
(``{'state_dict', 'meta'}``: method, number of classes, the matching full config and its hash), so
``vireid test`` and :func:`harness.api.load_model` need nothing else to load them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from harness.checkpoints import (
    UnsafeCheckpointError,
    describe_model,
    read_checkpoint,
    save_checkpoint,
)
from harness.errors import HarnessError
from harness.outputs import check_output

WRAPPER_KEYS = ('net', 'state_dict', 'model')


class UntrustedCheckpointError(UnsafeCheckpointError):
    """The file holds pickled objects besides tensors; loading it could run code."""


class DestinationError(HarnessError, ValueError):
    """The converter's output path would overwrite its input or an existing file."""


def check_destination(src: str | os.PathLike, dst: str | os.PathLike, force: bool = False) -> None:
    """Refuse ``dst`` when it is ``src`` itself (always: through a link too) or an existing file
    (unless ``force``)."""
    src, dst = Path(src), Path(dst)
    if dst.is_dir():
        raise DestinationError(
            f'the destination {dst} is a folder; give a file path such as '
            f'{dst / (src.stem + "_harness.pth")}'
        )
    check_output('DST', dst, {'source checkpoint': src}, fix='give another DST path')
    if dst.exists() and not force:
        raise DestinationError(
            f'the destination {dst} exists; choose another path, or pass --force to replace it'
        )


def load_official_state(
    src: str | Path,
    method: str,
    expected: str,
    trusted: bool = False,
    wrappers: Sequence[str] = WRAPPER_KEYS,
) -> dict[str, Tensor]:
    """The state dict inside an official checkpoint: unwrapped (``{'net': ...}``,
    ``{'model': {'state_dict': ...}}``), ``module.`` prefixes (DataParallel) removed.

    ``weights_only=True`` unless ``trusted``: official training scripts often pickle numpy arrays
    beside the weights, and unpickling an untrusted file can run arbitrary code.
    """
    path = Path(src)
    if not path.is_file():
        raise FileNotFoundError(f'official {method} checkpoint {src} does not exist')
    hint = (
        f'Only if you trust the file: `vireid convert {method.lower()} SRC DST --trusted` '
        '(Python: convert(src, dst, trusted=True)); unpickling runs arbitrary code.'
    )
    try:
        obj = read_checkpoint(path, trusted=trusted, untrusted_hint=hint)
    except UnsafeCheckpointError as err:
        raise UntrustedCheckpointError(str(err)) from None
    for _ in range(3):
        if isinstance(obj, dict) and not all(isinstance(v, Tensor) for v in obj.values()):
            inner = next((obj[k] for k in wrappers if isinstance(obj.get(k), dict)), None)
            if inner is not None:
                obj = inner
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        bad = (
            [k for k, v in obj.items() if not isinstance(v, Tensor)][:5]
            if isinstance(obj, dict)
            else []
        )
        raise ValueError(
            f'{src}: expected {expected} (a dict of tensors, optionally under '
            f'{"/".join(repr(w) for w in wrappers)}), got {type(obj).__name__}'
            + (f' with non-tensor entries {bad}' if bad else '')
        )
    return {k.removeprefix('module.'): v for k, v in obj.items()}


def save_converted(
    state: dict[str, Tensor],
    src: str | os.PathLike,
    dst: str | os.PathLike,
    method: str,
    num_classes: int,
    **extra: Any,
) -> dict[str, Any]:
    """Write ``state`` to ``dst`` atomically as a harness checkpoint describing itself; returns
    its ``meta``. ``dst`` may not be ``src``."""
    check_destination(src, dst, force=True)
    meta = converted_meta(state, src, method, num_classes, **extra)
    save_checkpoint({'state_dict': state, 'meta': meta}, dst)
    return meta


def write_converted(
    state: dict[str, Tensor],
    src: str | os.PathLike,
    dst: str | os.PathLike,
    method: str,
    num_classes: int,
    **summary: Any,
) -> dict[str, Any]:
    """The tail of every converter: ``state`` written to ``dst`` (:func:`save_converted`), and the
    summary ``vireid convert`` prints: the method, both files, the classes, then ``summary``."""
    save_converted(state, src, dst, method, num_classes)
    return dict(method=method, src=str(src), dst=str(dst), num_classes=num_classes, **summary)


def converted_meta(
    state: dict[str, Tensor], src: str | os.PathLike, method: str, num_classes: int, **extra: Any
) -> dict[str, Any]:
    """``meta`` of a converted checkpoint: the method's full config whose model the converted
    tensors fit exactly (by the protocol's class count: SYSU-MM01 395, RegDB 206) is named with
    its hash, so the checkpoint is re-scored with that config; ``None`` when none fits."""
    config, chash, dataset = _matching_config(state, method, num_classes)
    return describe_model(
        method, num_classes, config, chash, dataset=dataset, converted_from=Path(src).name, **extra
    )


def _matching_config(
    state: dict[str, Tensor], method: str, num_classes: int
) -> tuple[str | None, str | None, str | None]:
    from mmengine.registry import DefaultScope

    from harness.engine.config import config_hash, load_config
    from harness.models.pretrained import without_pretrained
    from harness.plugins import discover
    from harness.registry import MODELS
    from protocols.datasets import TRAIN_CLASSES

    dataset = next((d for d, n in TRAIN_CLASSES.items() if n == num_classes), None)
    spec = discover().get(method)
    if dataset is None or spec is None:
        return None, None, dataset
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    for path in spec.config_files():
        cfg = load_config(path)
        if cfg.get('entry', {}).get('kind') != 'full' or cfg.protocol['dataset'] != dataset:
            continue
        with DefaultScope.overwrite_default_scope('harness'), torch.device('meta'):
            model = MODELS.build(without_pretrained(dict(cfg.model, num_classes=num_classes)))
        if {k: tuple(v.shape) for k, v in model.state_dict().items()} == shapes:
            return path.name, config_hash(cfg), dataset
    return None, None, dataset


def rename_by_prefix(key: str, table: Sequence[tuple[str, str]]) -> str | None:
    """``key`` with the first matching official prefix of ``table`` replaced, else ``None``."""
    for old, new in table:
        if key.startswith(old):
            return new + key[len(old) :]
    return None


def map_state_dict(
    official: dict[str, Tensor],
    target: dict[str, Tensor],
    rename: Callable[[str], str | None],
    is_unused: Callable[[str, Tensor], bool],
    what: str,
    unexpected_hint: str = '',
) -> tuple[dict[str, Tensor], list[str]]:
    """``official`` mapped onto the keys and shapes of ``target``, strictly.

    ``rename`` gives the harness key of a used official tensor; ``is_unused`` accepts the documented
    tensors the official forward never calls (they are dropped and returned). Anything else, a
    missing used tensor or a shape mismatch raises a ValueError naming them. ``num_batches_tracked``
    missing from old checkpoints is filled with 0 (it only matters for BN momentum=None).
    """
    out: dict[str, Tensor] = {}
    dropped, unexpected, bad_shape = [], [], []
    for key, value in official.items():
        new = rename(key)
        if new is not None and new in target:
            if value.shape != target[new].shape:
                bad_shape.append(f'{key} {tuple(value.shape)} -> {new} {tuple(target[new].shape)}')
            out[new] = value.detach().clone().contiguous()
        elif is_unused(key, value):
            dropped.append(key)
        else:
            unexpected.append(key)
    for key in target:
        if key not in out and key.endswith('num_batches_tracked'):
            out[key] = torch.zeros_like(target[key])
    missing = [k for k in target if k not in out]
    problems = []
    if unexpected:
        problems.append(
            f'{len(unexpected)} unexpected key(s){unexpected_hint}: '
            f'{", ".join(sorted(unexpected)[:8])}'
        )
    if missing:
        problems.append(
            f'{len(missing)} used tensor(s) missing (harness names): {", ".join(missing[:8])}'
        )
    if bad_shape:
        problems.append(f'{len(bad_shape)} shape mismatch(es): {"; ".join(bad_shape[:8])}')
    if problems:
        raise ValueError(f'not {what}: ' + ' | '.join(problems))
    return out, dropped


# --- mangye16/Cross-Modal-Re-ID-baseline's embed_net (model.py; AGW, and CAJ, whose ICCV21_CAJ/
# model.py is the same file) -> CrossModalityReID(TwoStreamResNet(share_from=1), NonLocalStages,
# GeneralizedMeanPooling, BNNeckHead) ------------------------------------------------------------

# (official prefix, harness prefix); the first match wins.
EMBED_NET_PREFIXES = (
    ('visible_module.visible.conv1.', 'backbone.visible.stem.0.'),
    ('visible_module.visible.bn1.', 'backbone.visible.stem.1.'),
    ('thermal_module.thermal.conv1.', 'backbone.infrared.stem.0.'),
    ('thermal_module.thermal.bn1.', 'backbone.infrared.stem.1.'),
    ('base_resnet.base.layer', 'backbone.shared.layer'),
    ('bottleneck.', 'head.bottleneck.'),
    ('classifier.', 'head.classifier.'),
)
EMBED_NET_NON_LOCAL = re.compile(r'^NL_([1-4])\.(\d+)\.(.+)$')
# The parts of embed_net's three ResNet-50 copies that its forward never calls.
EMBED_NET_UNUSED = re.compile(
    r'^(visible_module\.visible\.layer[1-4]|thermal_module\.thermal\.layer[1-4]'
    r'|base_resnet\.base\.(conv1|bn1))\.'
)


def embed_net_key(key: str) -> str | None:
    """The harness name of an official ``embed_net`` tensor its forward uses, else ``None``:
    ``visible_module.visible.{conv1,bn1}`` -> ``backbone.visible.stem.{0,1}``, the thermal stem
    likewise -> ``backbone.infrared.stem``, ``base_resnet.base.layerN`` ->
    ``backbone.shared.layerN``, ``NL_{s}.{i}`` -> ``non_local.layer{s}.{i}``, ``bottleneck`` /
    ``classifier`` -> ``head.*``."""
    nl = EMBED_NET_NON_LOCAL.match(key)
    if nl:
        stage, index, rest = nl.groups()
        return f'non_local.layer{stage}.{index}.{rest}'
    return rename_by_prefix(key, EMBED_NET_PREFIXES)


def map_embed_net(
    official: dict[str, Tensor], target: dict[str, Tensor], what: str
) -> tuple[dict[str, Tensor], list[str]]:
    """An official ``embed_net`` state dict mapped strictly onto ``target`` (a harness model's
    state dict); also returns the dropped unused keys. ``what`` names the expected checkpoint in
    the error."""
    return map_state_dict(
        official, target, embed_net_key, lambda key, _: bool(EMBED_NET_UNUSED.match(key)), what
    )


def convert_embed_net(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    method: str,
    title: str,
    build: Callable[[int], torch.nn.Module],
    trusted: bool = False,
) -> dict[str, Any]:
    """An official ``embed_net`` checkpoint of ``method`` (bare, or under ``'net'`` as train.py
    saves it) converted into a harness checkpoint at ``dst``; ``build(num_classes)`` gives the
    harness model (its class count read from ``classifier.weight``). Returns a summary."""
    official = load_official_state(
        src, title, 'an embed_net state dict', trusted, wrappers=('net',)
    )
    weight = official.get('classifier.weight')
    if weight is None or weight.dim() != 2:
        raise ValueError(
            f"{src} lacks 'classifier.weight' [num_classes, 2048]; is it a {title} embed_net?"
        )
    num_classes = int(weight.shape[0])
    out, dropped = map_embed_net(
        official,
        build(num_classes).state_dict(),
        f'an official {title} embed_net checkpoint (mangye16/Cross-Modal-Re-ID-baseline model.py)',
    )
    return write_converted(
        out,
        src,
        dst,
        method,
        num_classes,
        converted=len(out),
        dropped_unused=len(dropped),
        official_keys=len(official),
    )
