"""MPANet's own losses and the mean-teacher update rate.

Each reproduces the official value (DoubtedSteam/MPANet @ f57fd5c ``models/baseline.py``). The
centre-cluster loss, reusable beyond MPANet, is the harness's ``CenterClusterLoss``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.registry import MODELS


def pattern_overlap_loss(masks: Tensor) -> Tensor:
    """Mean pairwise overlap of the K sigmoid pattern maps (official ``models/baseline.py``).

    ``masks``: ``[B, K, H, W]`` in (0, 1). Raw inner products summed over positions and averaged
    over the ``B*K*(K-1)/2`` pattern pairs, so the value scales with ``H*W`` like the official one.
    """
    b, k = masks.shape[:2]
    with torch.autocast(masks.device.type, enabled=False):  # fp32 even inside an AMP forward
        flat = masks.float().flatten(2)
        gram = torch.bmm(flat, flat.transpose(1, 2))
        return torch.triu(gram, diagonal=1).sum() / (b * k * (k - 1) / 2)


def mutual_mean_kl(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """``mean_b KL(softmax(s_b) || softmax(t_b))``, gradient through the student only
    (KL(student ‖ teacher), as the official code computes it).

    The official ``KLDivLoss(log_softmax(teacher), softmax(student))`` puts the trainable student
    in the *target* slot, i.e. KL(student || teacher); reproduced here explicitly.
    """
    log_p = F.log_softmax(student_logits.float(), dim=1)
    log_q = F.log_softmax(teacher_logits.detach().float(), dim=1)
    return (log_p.exp() * (log_p - log_q)).sum(1).mean()


def ema_update_rate(epoch: int, base_rate: float = 0.2, decay_from: int = 100) -> float:
    """Weight of the *current* classifier in the mean-teacher update at 1-based ``epoch``.

    ``base_rate * min(1, decay_from / (epoch + 1))``: constant up to epoch 99, then slowly decaying
    (official ``epoch_started_callback``).
    """
    if epoch < 1:
        raise ValueError(f'ema_update_rate takes the 1-based epoch index, got {epoch}')
    return base_rate * min(1.0, decay_from / (epoch + 1))


@MODELS.register_module()
class PatternOverlapLoss(nn.Module):
    """:func:`pattern_overlap_loss` as a module: ``loss(masks)``."""

    takes_labels = False
    per_sample = True  # a mean over samples: under DDP each process's share is enough

    def forward(self, masks: Tensor) -> Tensor:
        return pattern_overlap_loss(masks)


@MODELS.register_module()
class MutualMeanKLLoss(nn.Module):
    """:func:`mutual_mean_kl` as a module: ``loss(student_logits, teacher_logits)``."""

    takes_labels = False
    per_sample = True  # a mean of per-row terms

    def forward(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        return mutual_mean_kl(student_logits, teacher_logits)
