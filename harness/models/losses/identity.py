"""The identity (ID) loss: cross-entropy over the training identities."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from harness.registry import MODELS


@MODELS.register_module()
class IdentityLoss(nn.Module):
    """``cross_entropy(logits, labels)``, computed in fp32, with optional label smoothing.

    Plain cross-entropy is what AGW, MMN and MPANet train with (``nn.CrossEntropyLoss()`` in
    mangye16/Cross-Modal-Re-ID-baseline and ZYK100/MMN ``train.py``; DoubtedSteam/MPANet
    ``models/baseline.py``); ``label_smoothing`` (Szegedy et al. 2016) is the option of the
    BoT/fast-reid recipes.
    """

    per_sample = True  # a mean of per-row terms: under DDP each GPU's share is enough

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f'label_smoothing must be in [0, 1), got {label_smoothing}')
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        return F.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)

    def extra_repr(self) -> str:
        return f'label_smoothing={self.label_smoothing}'
