"""Centre-cluster loss of MPANet (Wu et al., CVPR 2021; DoubtedSteam/MPANet @ f57fd5c
``layers/loss/local_center_loss.py``, ``CenterClusterLoss``).

The official code finds identities by batch position (anchors at 0, k, 2k ... of an
identity-contiguous batch); this computes the same number per identity, by label, so it does not
depend on the batch order.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from harness.registry import MODELS


def center_cluster_loss(
    feats: Tensor, labels: Tensor, margin: float = 0.7, eps: float = 1e-12
) -> Tensor:
    """Centre-cluster loss on (pre-BNNeck) features, ``margin`` = the paper's rho.

    Intra term: mean over samples of ``||f_b - c_{y_b}||`` (centres are batch means over both
    modalities, not detached). Inter term: for every identity ``p`` (one anchor per identity, as the
    official anchors at 0, k, 2k ... on its identity-contiguous batches), the mean over the samples
    ``j`` of other identities of ``[margin - ||c_p - c_{y_j}||]_+``, then the mean over identities.
    ``eps`` inside the intra root avoids a NaN gradient when a feature equals its centre.
    """
    # squared norms of 14 336-d features overflow fp16: fp32 even inside an AMP forward
    with torch.autocast(feats.device.type, enabled=False):
        return _center_cluster(feats.float(), labels, margin, eps)


def _center_cluster(feats: Tensor, labels: Tensor, margin: float, eps: float) -> Tensor:
    ids, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    if len(ids) < 2:
        raise ValueError(
            'center_cluster_loss needs at least two identities in the batch, '
            f'got labels {labels.tolist()}'
        )
    sums = torch.zeros(len(ids), feats.shape[1], dtype=feats.dtype, device=feats.device)
    centers = sums.index_add(0, inverse, feats) / counts.unsqueeze(1).to(feats.dtype)
    intra = ((feats - centers[inverse]) ** 2).sum(1).add(eps).sqrt().mean()
    sq = (centers**2).sum(1)
    dist = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * centers @ centers.t()).clamp(min=1e-12).sqrt()
    hinge = (margin - dist).clamp(min=0.0)
    # Weight identity q by its sample count: the official mean runs over other-identity samples.
    weights = counts.to(feats.dtype).unsqueeze(0).expand(len(ids), -1).clone()
    weights.fill_diagonal_(0.0)
    inter = ((hinge * weights).sum(1) / weights.sum(1)).mean()
    return intra + inter


@MODELS.register_module()
class CenterClusterLoss(nn.Module):
    """:func:`center_cluster_loss` as a module: ``loss(feats, labels)``."""

    def __init__(self, margin: float = 0.7, eps: float = 1e-12) -> None:
        super().__init__()
        self.margin, self.eps = float(margin), float(eps)

    def forward(self, feats: Tensor, labels: Tensor) -> Tensor:
        return center_cluster_loss(feats, labels, self.margin, self.eps)

    def extra_repr(self) -> str:
        return f'margin={self.margin}'
