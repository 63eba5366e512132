"""CAJ's triplet loss: ``TripletLoss_ADP``, the weighted regularised triplet with adaptive weights
and the "enhanced squared difference" (mangye16/Cross-Modal-Re-ID-baseline@e817a26
``ICCV21_CAJ/loss.py`` lines 108-161; ``train_ext.py`` line 230 builds it with ``--alpha 1 --gamma 1
--square 1``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.models.losses.triplet import weighted_distances
from harness.registry import MODELS

# loss.py line 148: the squared difference is clamped here so that exp() stays finite in fp32.
SQUARE_CLAMP = 88.0


@MODELS.register_module()
class TripletLossADP(nn.Module):
    """``TripletLoss_ADP(alpha, gamma, square)`` on raw features (``normalize_feature=False``, as
    ``train_ext.py`` calls it).

    Per anchor i: ``fp_i = sum_j d_ij w+_ij`` and ``cn_i = sum_k d_ik w-_ik`` with AGW's masked
    softmax weights of ``alpha * d`` and ``-alpha * d`` (:func:`weighted_distances`; the anchor is
    its own positive). ``square=0``: ``mean softplus(-gamma (cn - fp))`` (= ``SoftMarginLoss(gamma
    (cn - fp), 1)``; with ``alpha = gamma = 1`` exactly AGW's WRT). ``square=1``: ``s_i =
    min(gamma (fp_i - cn_i)^2, 88)``, ``y_i = -1`` if ``fp_i > cn_i`` else ``+1`` (no gradient),
    ``mean softplus(-y_i s_i)`` (= ``SoftMarginLoss(s, y)``). Returns ``(loss, n_correct)``,
    ``n_correct`` = anchors with ``cn >= fp``.
    """

    def __init__(self, alpha: float = 1.0, gamma: float = 1.0, square: int = 0) -> None:
        super().__init__()
        if square not in (0, 1):
            raise ValueError(f'TripletLossADP.square must be 0 or 1, got {square!r}')
        self.alpha, self.gamma, self.square = float(alpha), float(gamma), int(square)

    def forward(self, feats: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        furthest_positive, closest_negative = weighted_distances(feats, labels, self.alpha)
        if self.square == 0:
            loss = F.softplus(-self.gamma * (closest_negative - furthest_positive)).mean()
        else:
            diff_pow = torch.pow(furthest_positive - closest_negative, 2) * self.gamma
            diff_pow = diff_pow.clamp(max=SQUARE_CLAMP)
            y = torch.where(furthest_positive > closest_negative, -1.0, 1.0).to(diff_pow.dtype)
            # SoftMarginLoss(diff_pow, y) = mean log(1 + exp(-y * diff_pow))
            loss = F.softplus(-y * diff_pow).mean()
        return loss, (closest_negative >= furthest_positive).sum().detach()

    def extra_repr(self) -> str:
        return f'alpha={self.alpha}, gamma={self.gamma}, square={self.square}'
