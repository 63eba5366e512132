"""Triplet losses of the AGW code base (mangye16/Cross-Modal-Re-ID-baseline @ e817a26 ``loss.py``).

Both return ``(loss, n_correct)``: ``n_correct`` counts anchors whose (hardest or weighted)
negative distance is >= the positive one, as a detached int64 0-dim tensor (the official code
returns a Python int via ``.item()``; a tensor avoids a device sync and logs directly).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.registry import MODELS


def euclidean_dist(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise Euclidean distances as AGW computes them:
    ``sqrt(clamp(|a|^2 + |b|^2 - 2ab, 1e-12))``.

    The clamp keeps the diagonal at 1e-6 with a zero gradient instead of a NaN from ``sqrt(0)``.
    """
    sq_a = a.pow(2).sum(dim=1, keepdim=True)
    sq_b = b.pow(2).sum(dim=1, keepdim=True).t()
    return (sq_a + sq_b - 2.0 * a @ b.t()).clamp(min=1e-12).sqrt()


def _masks(feats: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    if feats.dim() != 2:
        raise ValueError(f'triplet loss expects features [N, D], got shape {tuple(feats.shape)}')
    if labels.shape != (feats.shape[0],):
        raise ValueError(
            f'triplet loss expects labels [N] matching {feats.shape[0]} features, '
            f'got shape {tuple(labels.shape)}'
        )
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    if bool(same.all(dim=1).any()):
        raise ValueError(
            'triplet loss: some anchor has no negative in the batch (a batch needs at '
            'least two identities); use a P x K identity sampler with P >= 2'
        )
    return same, ~same


@MODELS.register_module()
class BatchHardTripletLoss(nn.Module):
    """Batch-hard triplet loss (Hermans et al.), AGW's ``OriTripletLoss``.

    For each anchor: the farthest positive (the anchor itself counts, at distance 1e-6) and the
    closest negative, then ``MarginRankingLoss(margin)`` with target 1, i.e.
    ``mean(relu(d_ap - d_an + margin))``. Features are used as given (no normalisation).
    """

    def __init__(self, margin: float = 0.3) -> None:
        super().__init__()
        self.margin = float(margin)

    def forward(self, feats: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        pos, neg = _masks(feats, labels)
        dist = euclidean_dist(feats, feats)
        dist_ap = dist.masked_fill(~pos, float('-inf')).max(dim=1).values
        dist_an = dist.masked_fill(~neg, float('inf')).min(dim=1).values
        loss = F.margin_ranking_loss(dist_an, dist_ap, torch.ones_like(dist_an), margin=self.margin)
        return loss, (dist_an >= dist_ap).sum().detach()

    def extra_repr(self) -> str:
        return f'margin={self.margin}'


def softmax_weights(dist: Tensor, mask: Tensor) -> Tensor:
    """AGW's masked softmax over each row; the row max is taken over ``dist * mask`` (zeros at
    masked entries included) and ``1e-6`` is added to the normaliser, both as in the original."""
    max_v = (dist * mask).max(dim=1, keepdim=True).values
    exp = torch.exp(dist - max_v) * mask
    return exp / (exp.sum(dim=1, keepdim=True) + 1e-6)


def weighted_distances(feats: Tensor, labels: Tensor, alpha: float = 1.0) -> tuple[Tensor, Tensor]:
    """Per anchor, the softmax-weighted positive and negative distances of ``TripletLoss_WRT``:
    ``sum_j d_ij w+_ij`` with ``w+ = softmax_weights(alpha * d * P, P)`` and ``sum_k d_ik w-_ik``
    with ``w- = softmax_weights(-alpha * d * N, N)`` (the anchor is its own positive, at 1e-6).
    ``alpha`` scales the distances inside the weights only (CAJ's ``TripletLoss_ADP``; 1 in WRT)."""
    pos, neg = _masks(feats, labels)
    dist = euclidean_dist(feats, feats)
    is_pos, is_neg = pos.to(dist.dtype), neg.to(dist.dtype)
    dist_ap = dist * is_pos
    dist_an = dist * is_neg
    furthest_positive = (dist_ap * softmax_weights(dist_ap * alpha, is_pos)).sum(dim=1)
    closest_negative = (dist_an * softmax_weights(-dist_an * alpha, is_neg)).sum(dim=1)
    return furthest_positive, closest_negative


@MODELS.register_module()
class WeightedRegularizedTriplet(nn.Module):
    """AGW's weighted regularised triplet (``TripletLoss_WRT``): no margin, no mining.

    Positive distances are averaged with softmax(d) weights, negative distances with
    softmax(-d) weights, and ``SoftMarginLoss(d_n - d_p, 1) = mean(log(1 + exp(d_p - d_n)))``.
    ``normalize_feature=False`` is what AGW's ``train.py`` uses (raw pooled features).
    """

    def __init__(self, normalize_feature: bool = False) -> None:
        super().__init__()
        self.normalize_feature = normalize_feature

    def forward(self, feats: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        if self.normalize_feature:
            feats = feats / (feats.norm(p=2, dim=-1, keepdim=True) + 1e-12)
        furthest_positive, closest_negative = weighted_distances(feats, labels)
        diff = closest_negative - furthest_positive
        # = SoftMarginLoss(diff, 1), written as softplus: the same value, but finite when the
        # distances are large (randomly initialised trunks: torch's soft_margin_loss overflows to
        # inf).
        loss = F.softplus(-diff).mean()
        return loss, (closest_negative >= furthest_positive).sum().detach()

    def extra_repr(self) -> str:
        return f'normalize_feature={self.normalize_feature}'
