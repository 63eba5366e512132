"""Global pooling necks: ``[B, C, H, W] -> [B, C]``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from harness.registry import MODELS


def _check_map(name: str, x: Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f'{name} expects a [B, C, H, W] map, got shape {tuple(x.shape)}')


@MODELS.register_module()
class GeneralizedMeanPooling(nn.Module):
    """``[B, C, H, W] -> [B, C]``: ``(mean_{HW} x^p + eps)^(1/p)`` with a fixed ``p``.

    Follows AGW's ``embed_net`` (mangye16/Cross-Modal-Re-ID-baseline ``model.py`` @ e817a26,
    ``gm_pool == 'on'``) exactly: ``eps`` is added *after* the mean and inputs are not clamped, so
    the input must be non-negative (a post-ReLU map); a negative mean would give NaN. It pools in
    fp32 under AMP: cubing fp16 activations overflows above ~40.
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-12) -> None:
        super().__init__()
        if p <= 0:
            raise ValueError(f'GeM power p must be > 0, got {p}')
        self.p = float(p)
        self.eps = float(eps)

    def forward(self, x: Tensor) -> Tensor:
        _check_map('GeM pooling', x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            if x.dtype in (torch.float16, torch.bfloat16):
                x = x.float()
            return (x.flatten(2).pow(self.p).mean(dim=-1) + self.eps).pow(1.0 / self.p)

    def extra_repr(self) -> str:
        return f'p={self.p}, eps={self.eps}'


@MODELS.register_module()
class GlobalAveragePooling(nn.Module):
    """``[B, C, H, W] -> [B, C]``: the spatial mean (AGW's ``gm_pool == 'off'``, BoT, MPANet)."""

    def forward(self, x: Tensor) -> Tensor:
        _check_map('average pooling', x)
        return x.mean(dim=(2, 3))
