"""DEEN's multistage feature aggregation (MFA) block: a channel relation (CNL) then a spatial
relation (PNL) between a stage's output and the previous, finer feature map.

As ZYK100/LLCM@886e27c ``DEEN/model.py`` lines 124-203 computes them, which is not what the
paper's figure draws (a softmax in both relations): both affinities are divided by the number of
summed terms instead, and PNL folds its maps into tokens with a plain ``view``:

- **CNL** (lines 124-156): ``A = theta(x_h) phi(x_l)^T / C_l`` is a ``C_l x C_l`` channel
  affinity; ``y = A g(x_l)`` keeps the low map's resolution, and ``W`` (1x1 conv, stride 2 when the
  high map is half the size, + BN) brings it onto the high map: ``out = x_h + W(y)``.
- **PNL** (lines 158-191): ``g``, ``theta``, ``phi`` have ``c = C_l / 2`` channels, but each output
  is viewed as ``C_l`` rows of ``HW / 2`` (:func:`fold_tokens`), so a "token" (a column of that
  view) is not a pixel: token ``t`` holds, for every channel, the values at the flattened pixel
  positions ``t`` and ``t + HW/2`` (for even ``H``, the pixel ``H/2`` rows below). The affinity
  of the ``HW/2`` high tokens with the ``HW_l/2`` low tokens is divided by ``HW_l/2``, and the
  result is unfolded by the inverse ``view``. A per-pixel non-local block would be another model.

Both ``W`` BatchNorms start at zero weight and bias: a fresh block is the identity on ``x_h``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _zero_bn(bn: nn.BatchNorm2d) -> nn.BatchNorm2d:
    nn.init.zeros_(bn.weight)
    nn.init.zeros_(bn.bias)
    return bn


def fold_tokens(x: Tensor, rows: int) -> Tensor:
    """``x`` ``[B, c, H, W]`` as ``[B, rows, c*H*W / rows]``, the official ``.view(B, rows, -1)``.

    Refuses maps whose size the rows do not divide (the official ``view`` would fail too), naming
    the fix: the input size sets ``H x W``.
    """
    b, c, h, w = x.shape
    if (c * h * w) % rows:
        raise ValueError(
            f'MFA: a {c} x {h} x {w} map cannot be folded into {rows} rows (DEEN views every '
            f'relation map as rows of the low channel count); choose an input size for which '
            f'{c} * H * W is a multiple of {rows} at every MFA block (384 x 144 and 64 x 32 work)'
        )
    return x.reshape(b, rows, -1)


class ChannelRelation(nn.Module):
    """CNL (official name): ``x_h + W(theta(x_h) phi(x_l)^T / C_l @ g(x_l))``.

    ``downsample``: the high map is half the low map's size (official ``flag=1``: ``phi`` and ``W``
    use stride 2), else both have the same size (``flag=0``, MFA1).
    """

    def __init__(self, high_dim: int, low_dim: int, downsample: bool) -> None:
        super().__init__()
        stride = 2 if downsample else 1
        self.low_dim = low_dim
        self.g = nn.Conv2d(low_dim, low_dim, kernel_size=1)
        self.theta = nn.Conv2d(high_dim, low_dim, kernel_size=1)
        self.phi = nn.Conv2d(low_dim, low_dim, kernel_size=1, stride=stride)
        self.W = nn.Sequential(
            nn.Conv2d(low_dim, high_dim, kernel_size=1, stride=stride),
            _zero_bn(nn.BatchNorm2d(high_dim)),
        )

    def forward(self, x_h: Tensor, x_l: Tensor) -> Tensor:
        b = x_h.shape[0]
        g = self.g(x_l).reshape(b, self.low_dim, -1)  # [B, C_l, N_l]
        theta = self.theta(x_h).reshape(b, self.low_dim, -1)  # [B, C_l, N_h]
        phi = self.phi(x_l)
        if phi.shape[2:] != x_h.shape[2:]:
            relation = 'twice' if self.phi.stride[0] == 2 else 'the same as'
            raise ValueError(
                f'MFA: the low map {tuple(x_l.shape[2:])} does not line up with the high map '
                f'{tuple(x_h.shape[2:])}; it must be {relation} the high map size'
            )
        phi = phi.reshape(b, self.low_dim, -1).transpose(1, 2)  # [B, N_h, C_l]
        energy = torch.matmul(theta, phi)  # [B, C_l, C_l]
        y = torch.matmul(energy / energy.shape[-1], g)  # no softmax: divided by C_l
        return self.W(y.reshape(b, self.low_dim, *x_l.shape[2:])) + x_h


class SpatialRelation(nn.Module):
    """PNL (official name) with its ``view`` token folding (see the module docstring)."""

    def __init__(self, high_dim: int, low_dim: int, reduction: int = 2) -> None:
        super().__init__()
        if low_dim % reduction:
            raise ValueError(f'PNL: low_dim {low_dim} is not divisible by reduction {reduction}')
        self.low_dim, self.inter = low_dim, low_dim // reduction
        self.g = nn.Conv2d(low_dim, self.inter, kernel_size=1)
        self.theta = nn.Conv2d(high_dim, self.inter, kernel_size=1)
        self.phi = nn.Conv2d(low_dim, self.inter, kernel_size=1)
        self.W = nn.Sequential(
            nn.Conv2d(self.inter, high_dim, kernel_size=1), _zero_bn(nn.BatchNorm2d(high_dim))
        )

    def forward(self, x_h: Tensor, x_l: Tensor) -> Tensor:
        b = x_h.shape[0]
        g = fold_tokens(self.g(x_l), self.low_dim).transpose(1, 2)  # [B, T_l, C_l]
        theta = fold_tokens(self.theta(x_h), self.low_dim).transpose(1, 2)  # [B, T_h, C_l]
        phi = fold_tokens(self.phi(x_l), self.low_dim)  # [B, C_l, T_l]
        energy = torch.matmul(theta, phi)  # [B, T_h, T_l]
        y = torch.matmul(energy / energy.shape[-1], g)  # no softmax: divided by T_l
        y = y.transpose(1, 2).reshape(b, self.inter, *x_h.shape[2:])  # the inverse view
        return self.W(y) + x_h


class MFABlock(nn.Module):
    """``PNL(CNL(x, x0), x0)``: ``x`` the stage output (``high_dim`` channels), ``x0`` the previous
    block's output (``low_dim`` channels, twice the size when ``downsample``)."""

    def __init__(self, high_dim: int, low_dim: int, downsample: bool, reduction: int = 2) -> None:
        super().__init__()
        self.cnl = ChannelRelation(high_dim, low_dim, downsample)
        self.pnl = SpatialRelation(high_dim, low_dim, reduction)

    def forward(self, x: Tensor, x0: Tensor) -> Tensor:
        return self.pnl(self.cnl(x, x0), x0)
