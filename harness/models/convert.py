"""Reading official checkpoints for the method converters: one safe loader for all of them."""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import Tensor

WRAPPER_KEYS = ('net', 'state_dict', 'model')


class UntrustedCheckpointError(ValueError):
    """The file holds pickled objects besides tensors; loading it could run code."""


def load_official_state(src: str | Path, method: str, expected: str, trusted: bool = False,
                        wrappers: Sequence[str] = WRAPPER_KEYS) -> dict[str, Tensor]:
    """The state dict inside an official checkpoint: unwrapped (``{'net': ...}``,
    ``{'model': {'state_dict': ...}}``), ``module.`` prefixes (DataParallel) removed.

    ``weights_only=True`` unless ``trusted``: official training scripts often pickle numpy arrays
    beside the weights, and unpickling an untrusted file can run arbitrary code.
    """
    path = Path(src)
    if not path.is_file():
        raise FileNotFoundError(f'official {method} checkpoint {src} does not exist')
    try:
        obj = torch.load(path, map_location='cpu', weights_only=not trusted)
    except pickle.UnpicklingError as err:
        raise UntrustedCheckpointError(
            f'{src} holds pickled Python objects besides tensors, so torch.load(weights_only=True) '
            f'refused it ({str(err).splitlines()[0]}). Only if you trust the file: '
            f'`vireid convert {method.lower()} SRC DST --trusted` (Python: convert(src, dst, trusted=True)); '
            'unpickling runs arbitrary code.') from err
    for _ in range(3):
        if isinstance(obj, dict) and not all(isinstance(v, Tensor) for v in obj.values()):
            inner = next((obj[k] for k in wrappers if isinstance(obj.get(k), dict)), None)
            if inner is not None:
                obj = inner
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        bad = [k for k, v in obj.items() if not isinstance(v, Tensor)][:5] if isinstance(obj, dict) else []
        raise ValueError(f'{src}: expected {expected} (a dict of tensors, optionally under '
                         f'{"/".join(repr(w) for w in wrappers)}), got {type(obj).__name__}'
                         + (f' with non-tensor entries {bad}' if bad else ''))
    return {k.removeprefix('module.'): v for k, v in obj.items()}


def rename_by_prefix(key: str, table: Sequence[tuple[str, str]]) -> str | None:
    """``key`` with the first matching official prefix of ``table`` replaced, else ``None``."""
    for old, new in table:
        if key.startswith(old):
            return new + key[len(old):]
    return None


def map_state_dict(official: dict[str, Tensor], target: dict[str, Tensor],
                   rename: Callable[[str], str | None], is_unused: Callable[[str, Tensor], bool],
                   what: str, unexpected_hint: str = '') -> tuple[dict[str, Tensor], list[str]]:
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
        problems.append(f'{len(unexpected)} unexpected key(s){unexpected_hint}: {", ".join(sorted(unexpected)[:8])}')
    if missing:
        problems.append(f'{len(missing)} used tensor(s) missing (harness names): {", ".join(missing[:8])}')
    if bad_shape:
        problems.append(f'{len(bad_shape)} shape mismatch(es): {"; ".join(bad_shape[:8])}')
    if problems:
        raise ValueError(f'not {what}: ' + ' | '.join(problems))
    return out, dropped
