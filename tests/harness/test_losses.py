"""Triplet losses against per-anchor brute force (float64) and a hand-worked case."""

import math

import pytest
import torch

from harness.models.losses import BatchHardTripletLoss, WeightedRegularizedTriplet, euclidean_dist


def _dist(a, b):
    return math.sqrt(max(float(((a - b) ** 2).sum()), 1e-12))


def _batch(p=3, k=3, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(p * k, d, generator=g, dtype=torch.float64)
    labels = torch.arange(p).repeat_interleave(k)
    return feats, labels


def test_euclidean_dist_matches_direct_norm():
    a, _ = _batch()
    b = a.flip(0)[:4]
    dist = euclidean_dist(a, b)
    for i in range(len(a)):
        for j in range(len(b)):
            assert dist[i, j].item() == pytest.approx(_dist(a[i], b[j]), rel=1e-9, abs=1e-9)
    assert torch.allclose(
        euclidean_dist(a, a).diagonal(), torch.full((len(a),), 1e-6, dtype=a.dtype)
    )


def test_batch_hard_hand_worked_1d():
    # 1-D points 0, 1 (id 0) and 3, 7 (id 1): only anchor 3 violates (d_ap 4, d_an 2).
    feats = torch.tensor([[0.0], [1.0], [3.0], [7.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    loss, correct = BatchHardTripletLoss(margin=0.3)(feats, labels)
    assert loss.item() == pytest.approx((4 - 2 + 0.3) / 4)
    assert int(correct) == 3


@pytest.mark.parametrize('margin', [0.3, 1.0])
def test_batch_hard_matches_brute_force(margin):
    feats, labels = _batch(seed=1)
    loss, correct = BatchHardTripletLoss(margin)(feats, labels)
    terms, n_ok = [], 0
    for i in range(len(feats)):
        ap = max(_dist(feats[i], feats[j]) for j in range(len(feats)) if labels[j] == labels[i])
        an = min(_dist(feats[i], feats[j]) for j in range(len(feats)) if labels[j] != labels[i])
        terms.append(max(0.0, ap - an + margin))
        n_ok += an >= ap
    assert loss.item() == pytest.approx(sum(terms) / len(terms), rel=1e-9)
    assert int(correct) == n_ok


def test_batch_hard_gradient_only_reaches_mined_pairs():
    feats = torch.tensor([[0.0], [1.0], [3.0], [7.0]], requires_grad=True)
    loss, _ = BatchHardTripletLoss(0.3)(feats, torch.tensor([0, 0, 1, 1]))
    loss.backward()
    # the one active term is (d(3,7) - d(3,1) + 0.3) / 4 = ((x7 - x3) - (x3 - x1) + 0.3) / 4
    expected = torch.tensor([[0.0], [0.25], [-0.5], [0.25]])
    assert torch.allclose(feats.grad, expected)


def _wrt_reference(feats, labels, normalize=False):
    if normalize:
        feats = feats / (feats.norm(dim=1, keepdim=True) + 1e-12)
    n = len(feats)
    terms, n_ok = [], 0
    for i in range(n):
        pos = [_dist(feats[i], feats[j]) for j in range(n) if labels[j] == labels[i]]
        neg = [_dist(feats[i], feats[j]) for j in range(n) if labels[j] != labels[i]]
        # AGW shifts by the row max of dist*mask (max positive distance; 0 for the negated
        # negatives) and adds 1e-6 to the normaliser
        m = max(pos)
        zp = sum(math.exp(d - m) for d in pos) + 1e-6
        fp = sum(d * math.exp(d - m) / zp for d in pos)
        zn = sum(math.exp(-d) for d in neg) + 1e-6
        cn = sum(d * math.exp(-d) / zn for d in neg)
        terms.append(math.log1p(math.exp(-(cn - fp))))
        n_ok += cn >= fp
    return sum(terms) / n, n_ok


@pytest.mark.parametrize('normalize', [False, True])
def test_wrt_matches_brute_force(normalize):
    feats, labels = _batch(p=4, k=2, d=6, seed=2)
    loss, correct = WeightedRegularizedTriplet(normalize_feature=normalize)(feats, labels)
    ref_loss, ref_ok = _wrt_reference(feats, labels, normalize)
    assert loss.item() == pytest.approx(ref_loss, rel=1e-9)
    assert int(correct) == ref_ok


def test_wrt_is_close_to_plain_softmax_weighting():
    # sanity of the semantics: the weights are a softmax over positive d / negative -d
    feats, labels = _batch(seed=3)
    loss, _ = WeightedRegularizedTriplet()(feats, labels)
    dist = torch.cdist(feats, feats)
    pos = labels[:, None] == labels[None, :]
    wp = torch.softmax(dist.masked_fill(~pos, float('-inf')), dim=1)
    wn = torch.softmax((-dist).masked_fill(pos, float('-inf')), dim=1)
    diff = (wn * dist).sum(1) - (wp * dist).sum(1)
    assert loss.item() == pytest.approx(torch.nn.functional.softplus(-diff).mean().item(), abs=1e-5)


def test_losses_backward_and_refuse_single_identity():
    feats = torch.randn(6, 4, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    for loss_fn in (BatchHardTripletLoss(), WeightedRegularizedTriplet()):
        loss, _ = loss_fn(feats, labels)
        loss.backward()
        assert feats.grad is not None and torch.isfinite(feats.grad).all()
        feats.grad = None
        with pytest.raises(ValueError, match='no negative'):
            loss_fn(feats, torch.zeros(6, dtype=torch.long))
        with pytest.raises(ValueError, match='labels'):
            loss_fn(feats, labels[:4])
