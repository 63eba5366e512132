"""Horizontal part pooling and the per-part embedding/classifier heads (TSLFN+HC, PCB)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

PART_POOLS = ('avg', 'max', 'gem')
PART_HEADS = ('tslfn', 'hctri')


def part_windows(height: int, num_parts: int) -> list[tuple[int, int]]:
    """Row ranges ``[start, stop)`` of the ``num_parts`` stripes of a map ``height`` rows tall.

    TSLFN's pooling (98zyx/... ``model.py``): stride ``s = H // p``, window ``k = H - (p-1)*s``.
    When ``p`` divides ``H`` these are ``p`` equal disjoint stripes; otherwise every window is
    ``k`` rows tall and consecutive windows overlap by ``k - s`` rows (all rows are covered).
    """
    if not 1 <= num_parts <= height:
        raise ValueError(f'num_parts must be in 1..{height} (the feature-map height), got {num_parts}; '
                         f'use a taller input_size or fewer parts')
    stride = height // num_parts
    size = height - (num_parts - 1) * stride
    return [(p * stride, p * stride + size) for p in range(num_parts)]


class PartPooling(nn.Module):
    """``[B, C, H, W]`` -> ``[B, C, p]``: one pooled vector per horizontal stripe."""

    def __init__(self, num_parts: int, pool: str = 'avg', gem_p: float = 3.0, eps: float = 1e-12) -> None:
        super().__init__()
        if pool not in PART_POOLS:
            raise ValueError(f'part_pool must be one of {PART_POOLS}, got {pool!r}')
        self.num_parts, self.pool, self.gem_p, self.eps = int(num_parts), pool, float(gem_p), eps

    def forward(self, x: Tensor) -> Tensor:
        parts = [x[:, :, start:stop] for start, stop in part_windows(x.shape[2], self.num_parts)]
        return torch.stack([self._pool(p.flatten(2)) for p in parts], dim=2)

    def _pool(self, x: Tensor) -> Tensor:
        if self.pool == 'avg':
            return x.mean(dim=2)
        if self.pool == 'max':
            return x.amax(dim=2)
        # HcTri's GeM: (mean(x^p) + eps)^(1/p) on the non-negative post-ReLU map
        return (x.clamp(min=0).pow(self.gem_p).mean(dim=2) + self.eps).pow(1.0 / self.gem_p)

    def extra_repr(self) -> str:
        return f'num_parts={self.num_parts}, pool={self.pool!r}' + (f', p={self.gem_p}' if self.pool == 'gem' else '')


class PartHead(nn.Module):
    """One part's embedding and classifier, shared by both modalities.

    ``'tslfn'`` (98zyx/...): ``Linear(C->512) + BN1d`` embedding; classifier
    ``LeakyReLU(0.1) -> Dropout -> Linear(512->classes)``. ``'hctri'`` (hijune6/...): the 1x1
    conv + BN2d + ReLU on a pooled 1x1 map, written as its equivalent ``Linear + BN1d + ReLU``
    (256-d); classifier ``Linear(256->classes)``.
    """

    def __init__(self, in_dim: int, emb_dim: int, num_classes: int, kind: str = 'tslfn',
                 dropout: float = 0.0) -> None:
        super().__init__()
        if kind not in PART_HEADS:
            raise ValueError(f'part_head must be one of {PART_HEADS}, got {kind!r}')
        self.kind = kind
        linear, bn = nn.Linear(in_dim, emb_dim), nn.BatchNorm1d(emb_dim)
        nn.init.kaiming_normal_(linear.weight, a=0, mode='fan_out')
        nn.init.zeros_(linear.bias)
        nn.init.normal_(bn.weight, 1.0, 0.01)
        nn.init.zeros_(bn.bias)
        self.embed = nn.Sequential(linear, bn) if kind == 'tslfn' else nn.Sequential(linear, bn, nn.ReLU(inplace=True))
        fc = nn.Linear(emb_dim, num_classes)
        nn.init.normal_(fc.weight, 0.0, 0.001)
        nn.init.zeros_(fc.bias)
        layers: list[nn.Module] = [nn.LeakyReLU(0.1)] if kind == 'tslfn' else []
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.classifier = nn.Sequential(*layers, fc)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x [B, C]`` -> (embedding ``[B, emb_dim]``, logits ``[B, classes]``)."""
        emb = self.embed(x)
        return emb, self.classifier(emb)
