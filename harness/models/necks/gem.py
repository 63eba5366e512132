"""Generalized-mean (GeM) pooling over the spatial map, as AGW computes it."""
from __future__ import annotations

from torch import Tensor, nn


class GeneralizedMeanPooling(nn.Module):
    """``[B, C, H, W] -> [B, C]``: ``(mean_{HW} x^p + eps)^(1/p)`` with a fixed ``p``.

    Follows AGW's ``embed_net`` exactly: ``eps`` is added *after* the mean and inputs are not
    clamped, so the input must be non-negative (a post-ReLU map); a negative mean would give NaN.
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-12) -> None:
        super().__init__()
        if p <= 0:
            raise ValueError(f'GeM power p must be > 0, got {p}')
        self.p = float(p)
        self.eps = float(eps)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f'GeM pooling expects a [B, C, H, W] map, got shape {tuple(x.shape)}')
        return (x.flatten(2).pow(self.p).mean(dim=-1) + self.eps).pow(1.0 / self.p)

    def extra_repr(self) -> str:
        return f'p={self.p}, eps={self.eps}'
