"""Numerical backend switches of a run (TF32, cuDNN), set from the config and recorded.

On Ampere and newer GPUs PyTorch runs float32 convolutions in TF32 by default (10-bit mantissa
products; ``torch.backends.cudnn.allow_tf32 = True``) but float32 matrix products in full
precision (``torch.backends.cuda.matmul.allow_tf32 = False`` since PyTorch 1.12; before that,
when the official repositories were written, both were TF32 on such GPUs). These settings change
the numbers a GPU run produces, so a config may set them and every record states the values the
run used (``provenance.backends``, read back from torch after the engine set up the run).

Config key (every entry optional; the defaults are PyTorch's)::

    backends = dict(matmul_tf32=False, cudnn_tf32=True, cudnn_benchmark=False,
                    cudnn_deterministic=False)

``randomness.deterministic = True`` (a protocol setting) still forces deterministic cuDNN, as
mmengine implements it; the record shows the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

DEFAULTS = dict(
    matmul_tf32=False, cudnn_tf32=True, cudnn_benchmark=False, cudnn_deterministic=False
)


def resolve(cfg_backends: Mapping[str, Any] | None) -> dict[str, bool]:
    """The config's ``backends`` over :data:`DEFAULTS`; unknown keys and non-booleans refused."""
    given = dict(cfg_backends or {})
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ValueError(f'backends has unknown keys {unknown}; allowed: {sorted(DEFAULTS)}')
    bad = {k: v for k, v in given.items() if not isinstance(v, bool)}
    if bad:
        raise ValueError(f'backends values must be True or False, got {bad}')
    return {**DEFAULTS, **given}


def apply(settings: Mapping[str, bool]) -> None:
    """Set the switches for this process (no effect on CPU-only runs, but recorded all the same)."""
    torch.backends.cuda.matmul.allow_tf32 = bool(settings['matmul_tf32'])
    torch.backends.cudnn.allow_tf32 = bool(settings['cudnn_tf32'])
    torch.backends.cudnn.benchmark = bool(settings['cudnn_benchmark'])
    torch.backends.cudnn.deterministic = bool(settings['cudnn_deterministic'])


def effective() -> dict[str, Any]:
    """What this process runs with now, for the record."""
    cudnn = torch.backends.cudnn
    return dict(
        matmul_tf32=bool(torch.backends.cuda.matmul.allow_tf32),
        cudnn_tf32=bool(torch.backends.cudnn.allow_tf32),
        cudnn_benchmark=bool(torch.backends.cudnn.benchmark),
        cudnn_deterministic=bool(torch.backends.cudnn.deterministic),
        float32_matmul_precision=torch.get_float32_matmul_precision(),
        deterministic_algorithms=bool(torch.are_deterministic_algorithms_enabled()),
        cudnn_version=cudnn.version() if cudnn.is_available() else None,
    )
