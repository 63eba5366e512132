"""DEEN's diverse embedding expansion (DEE) module, as ZYK100/LLCM@886e27c ``DEEN/model.py``
lines 91-121 builds it (``DEE_module``).

Each of the two branches averages three 3x3 convolutions ``C -> C/4`` with dilation (= padding)
1, 2, 3 and no bias, applies a ReLU and a 1x1 convolution ``C/4 -> C`` with bias; every convolution
weight is kaiming-normal (fan_in, ``weights_init_kaiming``, lines 19-23), the 1x1 biases keep
PyTorch's default. The input and both branch outputs are stacked along the **batch** axis,
``[x; branch1(x); branch2(x)]``, and go through ``Dropout(0.01)`` (line 112): the batch triples,
at test time too (dropout is then off), and the dropout also hits the original rows in training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DILATIONS = (1, 2, 3)


class DEEBranch(nn.Module):
    """``proj(relu(mean_d conv_d(x)))``: official ``FCk1..FCk3`` (``convs``) and ``FCk``
    (``proj``)."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        if channels % reduction:
            raise ValueError(f'DEE: {channels} channels are not divisible by {reduction}')
        inner = channels // reduction
        self.convs = nn.ModuleList(
            nn.Conv2d(channels, inner, kernel_size=3, padding=d, dilation=d, bias=False)
            for d in DILATIONS
        )
        self.proj = nn.Conv2d(inner, channels, kernel_size=1)
        for conv in (*self.convs, self.proj):
            nn.init.kaiming_normal_(conv.weight, a=0, mode='fan_in')

    def forward(self, x: Tensor) -> Tensor:
        # (FC11(x) + FC12(x) + FC13(x)) / 3, summed in that order
        return self.proj(F.relu(sum(conv(x) for conv in self.convs) / len(self.convs)))


class DiverseEmbeddingExpansion(nn.Module):
    """``dropout(cat([x, branch_1(x), ..., branch_n(x)], dim=0))``: ``(n + 1) B`` rows from
    ``B``."""

    def __init__(self, channels: int, num_branches: int = 2, dropout: float = 0.01) -> None:
        super().__init__()
        if num_branches < 1:
            raise ValueError(f'DEE needs at least one branch, got num_branches={num_branches}')
        self.branches = nn.ModuleList(DEEBranch(channels) for _ in range(num_branches))
        self.dropout = nn.Dropout(p=dropout)

    @property
    def num_embeddings(self) -> int:
        """Row blocks out per input block: the original and one per branch."""
        return 1 + len(self.branches)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(torch.cat([x, *(branch(x) for branch in self.branches)], dim=0))
