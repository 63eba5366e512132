"""The middle modality generator (MMG): maps visible and infrared images into one image space.

Official ``model.py`` (ZYK100/MMN): per modality an encoder Conv1x1(3->1) -> ReLU -> Conv1x1(1->1)
-> ReLU -> BatchNorm2d(1), then one decoder Conv1x1(1->3) -> ReLU shared by both modalities. Every
op is per pixel, so the middle-modality (M) image is a pointwise function of the 3 input values
(plus the BN statistics). Attribute names mirror the official ``encode1/fc1/bn1`` (visible),
``encode2/fc2/bn2`` (infrared) and ``decode``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from protocols.datasets.base import Modality

# Official ``my_weights_init``: every MMG conv weight starts at this constant, biases at 0, so the
# encoder starts as a scaled grey level and the decoder copies it into 3 identical channels.
INIT_WEIGHT = 0.333


class ModalityEncoder(nn.Module):
    """One modality's encoder: 3-channel image -> 1-channel map."""

    def __init__(self) -> None:
        super().__init__()
        self.encode = nn.Conv2d(3, 1, kernel_size=1)
        self.fc = nn.Conv2d(1, 1, kernel_size=1)
        # BatchNorm2d keeps PyTorch's default init (weight 1, bias 0): the official
        # ``weights_init_kaiming`` only matches 'BatchNorm1d', so it is a no-op here.
        self.bn = nn.BatchNorm2d(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(F.relu(self.fc(F.relu(self.encode(x)))))


class MiddleModalityGenerator(nn.Module):
    """Modality-specific encoders, shared decoder; output is the unnormalised M image (>= 0)."""

    def __init__(self, init_weight: float = INIT_WEIGHT) -> None:
        super().__init__()
        self.visible = ModalityEncoder()
        self.infrared = ModalityEncoder()
        self.decode = nn.Conv2d(1, 3, kernel_size=1)
        for conv in (
            self.visible.encode,
            self.visible.fc,
            self.infrared.encode,
            self.infrared.fc,
            self.decode,
        ):
            nn.init.constant_(conv.weight, init_weight)
            nn.init.zeros_(conv.bias)

    def encoder(self, modality: int) -> ModalityEncoder:
        if int(modality) == Modality.VISIBLE:
            return self.visible
        if int(modality) == Modality.INFRARED:
            return self.infrared
        raise ValueError(
            f'modality must be {int(Modality.VISIBLE)} (visible) or '
            f'{int(Modality.INFRARED)} (infrared), got {modality!r}'
        )

    def forward(self, x: Tensor, modality: int) -> Tensor:
        """M images of a one-modality batch ``[B, 3, H, W]`` (the official eval path)."""
        return F.relu(self.decode(self.encoder(modality)(x)))

    def forward_pair(self, x_vis: Tensor, x_ir: Tensor) -> tuple[Tensor, Tensor]:
        """M images of a training pair; each encoder's BN sees only its own modality's batch.

        Decoding the concatenation once, as the official training forward does, equals decoding
        each half (the decoder is pointwise).
        """
        codes = torch.cat((self.visible(x_vis), self.infrared(x_ir)), dim=0)
        m_vis, m_ir = F.relu(self.decode(codes)).split([x_vis.shape[0], x_ir.shape[0]], dim=0)
        return m_vis, m_ir
