"""Non-local block (Wang et al., CVPR 2018) in AGW's "embedded dot-product" form.

Module names (``g.0``, ``theta``, ``phi``, ``W.0``, ``W.1``) match AGW's ``Non_local`` so official
checkpoints map by prefix only.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class NonLocalBlock(nn.Module):
    """``z = W(softmax-free attention(x)) + x`` with the affinity divided by ``N = H * W``.

    ``inter_channels=None`` reproduces AGW exactly: its code computes
    ``inter_channels = reduc_ratio // reduc_ratio``, i.e. **1** whatever ``reduc_ratio`` is (the
    intended ``in_channels // reduc_ratio`` is a typo upstream, but it is what the reported
    numbers were trained with). Pass ``inter_channels=in_channels // reduc_ratio`` for the
    textbook block. ``W``'s BatchNorm starts at zero so a fresh block is the identity.
    """

    def __init__(self, in_channels: int, reduc_ratio: int = 2, inter_channels: int | None = None) -> None:
        super().__init__()
        if reduc_ratio < 1:
            raise ValueError(f'NonLocalBlock reduc_ratio must be >= 1, got {reduc_ratio}')
        self.in_channels = in_channels
        self.inter_channels = reduc_ratio // reduc_ratio if inter_channels is None else int(inter_channels)
        if self.inter_channels < 1:
            raise ValueError(f'NonLocalBlock inter_channels must be >= 1, got {self.inter_channels}')
        inter = self.inter_channels
        self.g = nn.Sequential(nn.Conv2d(in_channels, inter, kernel_size=1))
        self.W = nn.Sequential(nn.Conv2d(inter, in_channels, kernel_size=1), nn.BatchNorm2d(in_channels))
        nn.init.zeros_(self.W[1].weight)
        nn.init.zeros_(self.W[1].bias)
        self.theta = nn.Conv2d(in_channels, inter, kernel_size=1)
        self.phi = nn.Conv2d(in_channels, inter, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        g_x = self.g(x).flatten(2).transpose(1, 2)            # [B, N, C']
        theta_x = self.theta(x).flatten(2).transpose(1, 2)    # [B, N, C']
        phi_x = self.phi(x).flatten(2)                        # [B, C', N]
        affinity = torch.matmul(theta_x, phi_x) / (h * w)     # [B, N, N]
        y = torch.matmul(affinity, g_x).transpose(1, 2).reshape(b, self.inter_channels, h, w)
        return self.W(y) + x

    def extra_repr(self) -> str:
        return f'in_channels={self.in_channels}, inter_channels={self.inter_channels}'
