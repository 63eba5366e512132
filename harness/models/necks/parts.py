"""Horizontal part pooling (PCB, Sun et al. ECCV 2018): ``[B, C, H, W] -> [B, C, p]``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from harness.registry import MODELS

PART_POOLS = ('avg', 'max', 'gem')
PART_SPLITS = ('tslfn', 'chunk')


def stack_parts(parts: list[Tensor]) -> Tensor:
    """Per-part ``[B, D]`` tensors as one ``[B, D, P]``, stored part by part: each part's slice is
    contiguous, so per-part work on it (a loss, the next head) and the gradients coming back
    compute exactly as on the separate tensors."""
    return torch.stack(parts, dim=0).movedim(0, 2)


def split_parts(x: Tensor) -> list[Tensor]:
    """The ``P`` contiguous ``[B, D]`` parts of ``x [B, D, P]`` (views when ``x`` comes from
    :func:`stack_parts`), the inverse of :func:`stack_parts` for autograd too."""
    return [part.contiguous() for part in x.movedim(2, 0).unbind(0)]


def part_windows(height: int, num_parts: int) -> list[tuple[int, int]]:
    """Row ranges ``[start, stop)`` of the ``num_parts`` stripes of a map ``height`` rows tall.

    TSLFN's pooling (98zyx/Hetero-center-loss-for-cross-modality-person-re-id ``model.py``):
    stride ``s = H // p``, window ``k = H - (p-1)*s``. When ``p`` divides ``H`` these are ``p``
    equal disjoint stripes; otherwise every window is ``k`` rows tall and consecutive windows
    overlap by ``k - s`` rows (all rows are covered).
    """
    if not 1 <= num_parts <= height:
        raise ValueError(
            f'num_parts must be in 1..{height} (the feature-map height), got '
            f'{num_parts}; use a taller input_size or fewer parts'
        )
    stride = height // num_parts
    size = height - (num_parts - 1) * stride
    return [(p * stride, p * stride + size) for p in range(num_parts)]


def chunk_windows(height: int, num_parts: int) -> list[tuple[int, int]]:
    """Row ranges of ``torch.chunk(x, num_parts, dim=2)`` (MMN, ZYK100/MMN ``model.py``): stripes
    of ``ceil(H / p)`` rows, the last one shorter. Refuses a height that gives fewer stripes."""
    size = -(-height // num_parts)
    windows = [(start, min(start + size, height)) for start in range(0, height, size)]
    if len(windows) != num_parts:
        raise ValueError(
            f'a map of height {height} cannot be cut into {num_parts} stripes; use an input height '
            f'giving a layer4 height >= num_parts and divisible by it (the map is 1/16 of the '
            f'input: e.g. 384 or 128 for 4 stripes)'
        )
    return windows


@MODELS.register_module()
class HorizontalPartPooling(nn.Module):
    """One pooled vector per horizontal stripe of the map, top to bottom.

    ``pool``: ``'avg'`` (PCB, TSLFN, MMN), ``'max'``, or ``'gem'`` (HcTri,
    hijune6/Hetero-center-triplet-loss-for-VT-Re-ID: ``(mean(x^p) + eps)^(1/p)`` on the
    non-negative post-ReLU map). ``split``: ``'tslfn'`` windows (:func:`part_windows`) or
    ``'chunk'`` stripes (:func:`chunk_windows`); the two agree when ``p`` divides the height.
    """

    def __init__(
        self,
        num_parts: int,
        pool: str = 'avg',
        gem_p: float = 3.0,
        eps: float = 1e-12,
        split: str = 'tslfn',
    ) -> None:
        super().__init__()
        if pool not in PART_POOLS:
            raise ValueError(f'part pool must be one of {PART_POOLS}, got {pool!r}')
        if split not in PART_SPLITS:
            raise ValueError(f'part split must be one of {PART_SPLITS}, got {split!r}')
        self.num_parts, self.pool, self.gem_p, self.eps = int(num_parts), pool, float(gem_p), eps
        self.split = split

    def windows(self, height: int) -> list[tuple[int, int]]:
        """The stripes' row ranges for a map ``height`` rows tall (raises if it cannot be cut)."""
        if self.split == 'chunk':
            return chunk_windows(height, self.num_parts)
        return part_windows(height, self.num_parts)

    def forward(self, x: Tensor) -> Tensor:
        parts = [x[:, :, start:stop] for start, stop in self.windows(x.shape[2])]
        return torch.stack([self._pool(p.flatten(2)) for p in parts], dim=2)

    def _pool(self, x: Tensor) -> Tensor:
        if self.pool == 'avg':
            return x.mean(dim=2)
        if self.pool == 'max':
            return x.amax(dim=2)
        return (x.clamp(min=0).pow(self.gem_p).mean(dim=2) + self.eps).pow(1.0 / self.gem_p)

    def extra_repr(self) -> str:
        gem = f', p={self.gem_p}' if self.pool == 'gem' else ''
        return f'num_parts={self.num_parts}, pool={self.pool!r}{gem}, split={self.split!r}'
