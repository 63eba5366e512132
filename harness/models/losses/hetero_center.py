"""Hetero-centre losses: the distance between an identity's modality centres.

- :class:`HeteroCenterLoss`: Zhu et al., "Hetero-Center Loss for Cross-Modality Person
  Re-Identification", Neurocomputing 2020 (98zyx/Hetero-center-loss-for-cross-modality-person-re-id
  ``train.py``, ``--w_hc``, ``--thd``).
- :class:`HeteroCenterTripletLoss`: Liu, Tan, Zhou, "Parameter Sharing Exploration and
  Hetero-Center Triplet Loss for Visible-Thermal Person Re-Identification", IEEE TMM 2021
  (hijune6/Hetero-center-triplet-loss-for-VT-Re-ID ``loss.py``).

Centres are found by label (and modality code), never by batch position, so the values do not
depend on the batch order. Modality codes are any integers: a model may add its own (an
auxiliary modality) beside the protocol's visible 0 and infrared 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from harness.models.losses.triplet import euclidean_dist
from harness.registry import MODELS

HC_REDUCTIONS = ('sum', 'mean')


def class_centres(feats: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Mean feature of each distinct label: (centres ``[U, D]``, sorted labels ``[U]``)."""
    uniq, inverse = torch.unique(labels, sorted=True, return_inverse=True)
    sums = feats.new_zeros(len(uniq), feats.shape[1]).index_add_(0, inverse, feats)
    counts = torch.bincount(inverse, minlength=len(uniq)).to(feats.dtype)
    return sums / counts.unsqueeze(1), uniq


def hetero_center_loss(
    feats: Tensor,
    labels: Tensor,
    modality: Tensor,
    pairs: Sequence[tuple[int, int]],
    margin: float = 0.0,
    reduction: str = 'sum',
) -> Tensor:
    """Zhu et al. 2020: ``sum_pairs sum_y max(0, |c_y^M1 - c_y^M2|^2 - margin)``.

    ``pairs`` are modality codes; identities present in only one modality of a pair are skipped.
    ``reduction='mean'`` averages over identities instead of summing. Features are used as given.
    """
    if reduction not in HC_REDUCTIONS:
        raise ValueError(f"hc_reduction must be 'sum' or 'mean', got {reduction!r}")
    feats = feats.float()
    total = feats.new_zeros(())
    for m1, m2 in pairs:
        sel1, sel2 = modality == m1, modality == m2
        if not bool(sel1.any()) or not bool(sel2.any()):
            continue
        c1, y1 = class_centres(feats[sel1], labels[sel1])
        c2, y2 = class_centres(feats[sel2], labels[sel2])
        common = torch.isin(y1, y2)
        if not bool(common.any()):
            continue
        # both label lists are sorted, so the common identities line up
        d = (c1[common] - c2[torch.isin(y2, y1)]).pow(2).sum(dim=1)
        d = (d - margin).clamp(min=0)
        total = total + (d.sum() if reduction == 'sum' else d.mean())
    return total


def hetero_center_triplet_loss(
    feats: Tensor, labels: Tensor, modality: Tensor, margin: float = 0.3
) -> Tensor:
    """Liu et al. (HcTri): batch-hard triplet over the per-(identity, modality) centres.

    Each centre is an anchor; hardest positive = farthest centre of the same identity (itself
    included, at 1e-6), hardest negative = nearest centre of another identity; mean hinge.
    """
    feats = feats.float()
    key = labels.long() * (int(modality.max()) + 1) + modality.long()
    centres, keys = class_centres(feats, key)
    centre_labels = torch.div(keys, int(modality.max()) + 1, rounding_mode='floor')
    same = centre_labels.unsqueeze(0) == centre_labels.unsqueeze(1)
    if bool(same.all()):
        raise ValueError('hetero-center triplet loss needs at least two identities in the batch')
    dist = euclidean_dist(centres, centres)
    d_ap = dist.masked_fill(~same, float('-inf')).amax(dim=1)
    d_an = dist.masked_fill(same, float('inf')).amin(dim=1)
    return (margin + d_ap - d_an).clamp(min=0).mean()


@MODELS.register_module()
class HeteroCenterLoss(nn.Module):
    """:func:`hetero_center_loss` as a module: ``loss(feats, labels, modality)``.

    ``pairs``: modality-code pairs whose centres are pulled together (TSLFN+HC: ``[(0, 1)]``,
    visible and infrared). Features are used as given (TSLFN+HC L2-normalises them first).
    """

    takes_modality = True

    def __init__(
        self,
        pairs: Sequence[Sequence[int]] = ((0, 1),),
        margin: float = 0.0,
        reduction: str = 'sum',
    ) -> None:
        super().__init__()
        if reduction not in HC_REDUCTIONS:
            raise ValueError(
                f'hetero-center reduction must be one of {HC_REDUCTIONS}, got {reduction!r}'
            )
        self.pairs = [tuple(pair) if isinstance(pair, Sequence) else (pair,) for pair in pairs]
        if any(
            len(pair) != 2
            or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in pair)
            or pair[0] == pair[1]
            for pair in self.pairs
        ):
            raise ValueError(
                'hetero-center pairs must be pairs of two distinct modality codes, e.g. '
                f'[(0, 1)] (visible, infrared), got {list(pairs)}'
            )
        self.margin, self.reduction = float(margin), reduction

    def forward(self, feats: Tensor, labels: Tensor, modality: Tensor) -> Tensor:
        return hetero_center_loss(feats, labels, modality, self.pairs, self.margin, self.reduction)

    def extra_repr(self) -> str:
        return f'pairs={self.pairs}, margin={self.margin}, reduction={self.reduction!r}'


@MODELS.register_module()
class HeteroCenterTripletLoss(nn.Module):
    """:func:`hetero_center_triplet_loss` as a module: ``loss(feats, labels, modality)``."""

    takes_modality = True

    def __init__(self, margin: float = 0.3) -> None:
        super().__init__()
        self.margin = float(margin)

    def forward(self, feats: Tensor, labels: Tensor, modality: Tensor) -> Tensor:
        return hetero_center_triplet_loss(feats, labels, modality, self.margin)

    def extra_repr(self) -> str:
        return f'margin={self.margin}'
