"""DEEN's own losses (ZYK100/LLCM@886e27c ``DEEN/loss.py``, ``DEEN/model.py``, ``DEEN/train.py``).

Both read the pooled features of a DEEN training batch: ``3`` row blocks (the original embedding,
then DEE branch 1 and 2), each ``[visible; infrared]``, as the model lays them out.

- :class:`CPMLoss`, center-guided pair mining (``CPMLoss``, loss.py lines 8-78; applied in
  train.py line 291 to (original, branch 1) and (original, branch 2)).
- :class:`OrthogonalLoss`, the branch orthogonality term (model.py lines 265-268, weighted in
  train.py line 292).

The identity loss and the batch-hard triplet (train.py lines 286, 288; ``OriTripletLoss``) are the
harness's ``IdentityLoss`` and ``BatchHardTripletLoss``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.models.losses.hetero_center import class_centres
from harness.models.losses.triplet import euclidean_dist
from harness.registry import MODELS


def _ranking(anchor: Tensor, positive: Tensor, margin: float) -> Tensor:
    """``MarginRankingLoss(margin)(anchor, positive, 1)``: mean relu(positive - anchor + margin)."""
    return F.margin_ranking_loss(anchor, positive, torch.ones_like(anchor), margin=margin)


def _nearest_other(dist: Tensor) -> Tensor:
    """Per row of a square distance matrix, the smallest entry off the diagonal."""
    eye = torch.eye(len(dist), dtype=torch.bool, device=dist.device)
    return dist.masked_fill(eye, float('inf')).min(dim=1).values


def cpm_loss(feats: Tensor, labels: Tensor, margin: float = 0.2) -> Tensor:
    """CPM on ``[VIS; IR; VIS gen; IR gen]`` (4 equal row blocks) with its labels.

    With ``c1 .. c4`` the per-identity centres of the four blocks and ``d`` the Euclidean distance
    (``sqrt(clamp(., 1e-12))``), for each identity ``i``:
    ``l123 = R(sg d(c1_i, c3_i), d(c2_i, c3_i)) + (R(min_j!=i d(c3_i, c3_j), d(c2_i, c3_i))
    + R(min_j!=i d(c1_i, c1_j), d(c2_i, c3_i))) / 2``, ``l124`` the same with the roles of the
    modalities swapped (anchor ``d(c1_i, c4_i)``, detached ``d(c2_i, c4_i)``, neighbours among
    ``c4`` and ``c2``); ``R(a, p) = mean_i relu(p_i - a_i + margin)``; result ``(l123 + l124) / 2``.

    The official code finds the identities by position: it cuts each block into as many
    consecutive groups as the first block has distinct labels, which is right only for batches of
    P identities x K images in the sampler's order. Here the centres are found by label, which
    gives the same value on such batches and the intended one on any other; every identity must be
    in all four blocks.
    """
    if feats.dim() != 2 or feats.shape[0] % 4 or labels.shape != feats.shape[:1]:
        raise ValueError(
            f'CPM expects features [4N, D] in 4 blocks (VIS, IR, VIS gen, IR gen) and one '
            f'label per row, got {tuple(feats.shape)} and {tuple(labels.shape)}'
        )
    centres, ids = [], None
    for block, block_labels in zip(feats.chunk(4), labels.chunk(4)):
        c, uniq = class_centres(block, block_labels)
        if ids is not None and not torch.equal(uniq, ids):
            raise ValueError(
                'CPM needs every identity of the batch in all four blocks (visible, infrared and '
                f'their generated copies); got identities {ids.tolist()} and {uniq.tolist()}; '
                'use CrossModalityIdentitySampler, which draws each identity in both modalities'
            )
        centres.append(c)
        ids = uniq
    if len(ids) < 2:
        raise ValueError(f'CPM needs at least two identities per batch, got {ids.tolist()}')
    c1, c2, c3, c4 = centres

    def pair(a: Tensor, b: Tensor) -> Tensor:  # d(a_i, b_i), from the official full matrix
        return euclidean_dist(a, b).diagonal()

    ap_123, an_123 = pair(c2, c3), pair(c1, c3).detach()
    ap_124, an_124 = pair(c1, c4), pair(c2, c4).detach()
    an_33, an_11 = _nearest_other(euclidean_dist(c3, c3)), _nearest_other(euclidean_dist(c1, c1))
    an_44, an_22 = _nearest_other(euclidean_dist(c4, c4)), _nearest_other(euclidean_dist(c2, c2))
    loss_123 = _ranking(an_123, ap_123, margin) + 0.5 * (
        _ranking(an_33, ap_123, margin) + _ranking(an_11, ap_123, margin)
    )
    loss_124 = _ranking(an_124, ap_124, margin) + 0.5 * (
        _ranking(an_44, ap_124, margin) + _ranking(an_22, ap_124, margin)
    )
    return (loss_123 + loss_124) / 2


def _embedding_blocks(feats: Tensor, labels: Tensor, n: int) -> tuple[tuple, tuple]:
    if feats.dim() != 2 or feats.shape[0] % (2 * n) or labels.shape != feats.shape[:1]:
        raise ValueError(
            f'DEEN losses expect features [{n} x 2B, D] ({n} embeddings, each [visible; '
            f'infrared]) and one label per row, got {tuple(feats.shape)} and '
            f'{tuple(labels.shape)}'
        )
    return feats.chunk(n), labels.chunk(n)


@MODELS.register_module()
class CPMLoss(nn.Module):
    """Center-guided pair mining between the original embedding and each DEE branch, summed:
    ``cpm(original, branch_1) + ... + cpm(original, branch_n)`` (:func:`cpm_loss`).

    Input: the pooled features of all ``num_embeddings`` row blocks and their labels.
    """

    def __init__(self, margin: float = 0.2, num_embeddings: int = 3) -> None:
        super().__init__()
        if num_embeddings < 2:
            raise ValueError(
                f'CPM compares generated embeddings: num_embeddings >= 2, got {num_embeddings}'
            )
        self.margin, self.num_embeddings = float(margin), int(num_embeddings)

    def forward(self, feats: Tensor, labels: Tensor) -> Tensor:
        blocks, block_labels = _embedding_blocks(feats, labels, self.num_embeddings)
        return sum(
            cpm_loss(
                torch.cat((blocks[0], generated)),
                torch.cat((block_labels[0], generated_labels)),
                self.margin,
            )
            for generated, generated_labels in zip(blocks[1:], block_labels[1:])
        )

    def extra_repr(self) -> str:
        return f'margin={self.margin}, num_embeddings={self.num_embeddings}'


@MODELS.register_module()
class OrthogonalLoss(nn.Module):
    """``sum_rows sum_{j<k} <p_j, p_k> / rows``: the inner products of a sample's DEE branch
    features (pre-BN, unnormalised), divided by all rows of the batch (``3 x 2B`` with two
    branches, the official ``xp.size(0)``). The original embedding's rows are not compared.
    """

    # A sum of per-sample terms over the (local) batch size: under DDP each GPU's share is enough.
    per_sample = True

    def __init__(self, num_embeddings: int = 3) -> None:
        super().__init__()
        if num_embeddings < 3:
            raise ValueError(
                f'the orthogonality loss compares DEE branches: num_embeddings >= 3 (the original '
                f'and two branches), got {num_embeddings}'
            )
        self.num_embeddings = int(num_embeddings)

    def forward(self, feats: Tensor, labels: Tensor) -> Tensor:
        blocks, _ = _embedding_blocks(feats, labels, self.num_embeddings)
        branches = blocks[1:]
        total = feats.new_zeros(())
        for j in range(len(branches)):
            for k in range(j + 1, len(branches)):
                total = total + (branches[j] * branches[k]).sum()
        return total / feats.shape[0]

    def extra_repr(self) -> str:
        return f'num_embeddings={self.num_embeddings}'
