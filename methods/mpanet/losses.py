"""MPANet's own losses and the mean-teacher update rate (official ``models/baseline.py`` and
``layers/loss/local_center_loss.py``).

Each function reproduces the official value (DoubtedSteam/MPANet ``models/baseline.py`` and
``layers/loss/local_center_loss.py``); where the official code depends on the batch order, the
function computes the same number per identity instead.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


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


def center_cluster_loss(feats: Tensor, labels: Tensor, margin: float = 0.7,
                        eps: float = 1e-12) -> Tensor:
    """Centre-cluster loss on pre-BNNeck features (official ``local_center_loss.py``; ρ = ``margin``).

    Intra term: mean over samples of ``||f_b - c_{y_b}||`` (centres are batch means over both
    modalities, not detached). Inter term: for every identity ``p`` (one anchor per identity, as the
    official anchors at 0, k, 2k ... on its identity-contiguous batches), the mean over the samples
    ``j`` of other identities of ``[margin - ||c_p - c_{y_j}||]_+``, then the mean over identities.
    ``eps`` inside the intra root avoids a NaN gradient when a feature equals its centre.
    """
    with torch.autocast(feats.device.type, enabled=False):  # squared norms of 14 336-d features overflow fp16
        return _center_cluster(feats.float(), labels, margin, eps)


def _center_cluster(feats: Tensor, labels: Tensor, margin: float, eps: float) -> Tensor:
    ids, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    if len(ids) < 2:
        raise ValueError('center_cluster_loss needs at least two identities in the batch, '
                         f'got labels {labels.tolist()}')
    sums = torch.zeros(len(ids), feats.shape[1], dtype=feats.dtype, device=feats.device)
    centers = sums.index_add(0, inverse, feats) / counts.unsqueeze(1).to(feats.dtype)
    intra = ((feats - centers[inverse]) ** 2).sum(1).add(eps).sqrt().mean()
    sq = (centers ** 2).sum(1)
    dist = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * centers @ centers.t()).clamp(min=1e-12).sqrt()
    hinge = (margin - dist).clamp(min=0.0)
    # Weight identity q by its sample count: the official mean runs over other-identity samples.
    weights = counts.to(feats.dtype).unsqueeze(0).expand(len(ids), -1).clone()
    weights.fill_diagonal_(0.0)
    inter = ((hinge * weights).sum(1) / weights.sum(1)).mean()
    return intra + inter


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
