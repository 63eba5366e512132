"""Reading official checkpoints for the method converters: one safe loader for all of them."""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Sequence

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
