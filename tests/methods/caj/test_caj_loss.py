"""TripletLossADP: the values of ICCV21_CAJ's TripletLoss_ADP on hand-checkable inputs (float64),
and square=0 with alpha = gamma = 1 is AGW's weighted regularised triplet."""

import math

import pytest
import torch

from harness.models.losses.triplet import WeightedRegularizedTriplet, weighted_distances
from methods.caj.losses import TripletLossADP

F64 = dict(dtype=torch.float64)


def test_values_on_a_satisfied_batch():
    # two identities 3 apart, each pair 1 apart: every anchor ranks its positive first
    feats = torch.tensor([[0, 0], [0, 1], [3, 0], [3, 1]], **F64)
    labels = torch.tensor([0, 0, 1, 1])
    fp, cn = weighted_distances(feats, labels)
    # fp = (1e-6 e^0 + 1 e^1) / (e^0 + e^1 + 1e-6) (the anchor is its own positive at 1e-6)
    assert fp == pytest.approx(torch.full((4,), 0.731058, **F64), abs=1e-6)
    # cn = (3 e^-3 + sqrt(10) e^-sqrt(10)) / (e^-3 + e^-sqrt(10) + 1e-6): the row max is 0
    assert cn == pytest.approx(torch.full((4,), 3.074536, **F64), abs=1e-6)
    s = (fp - cn) ** 2  # satisfied (fp < cn): y = +1, softplus(-s)
    assert float(TripletLossADP(1, 1, square=1)(feats, labels)[0]) == pytest.approx(
        0.0041116, abs=1e-7
    )
    assert float(TripletLossADP(1, 1, square=1)(feats, labels)[0]) == pytest.approx(
        float(torch.log1p(torch.exp(-s)).mean()), rel=1e-12
    )
    assert float(TripletLossADP(1, 1, square=0)(feats, labels)[0]) == pytest.approx(
        0.0916610, abs=1e-7
    )
    assert int(TripletLossADP(square=1)(feats, labels)[1]) == 4


def test_values_on_a_violated_batch():
    # the same identity 3 apart vertically, the other identity 1 apart: every anchor violated
    feats = torch.tensor([[0, 0], [0, 3], [1, 0], [1, 3]], **F64)
    labels = torch.tensor([0, 0, 1, 1])
    fp, cn = weighted_distances(feats, labels)
    assert fp == pytest.approx(torch.full((4,), 2.857720, **F64), abs=1e-6)
    assert cn == pytest.approx(torch.full((4,), 1.223121, **F64), abs=1e-6)
    loss, correct = TripletLossADP(1, 1, square=1)(feats, labels)
    assert float(loss) == pytest.approx(2.738747, abs=1e-6)  # softplus(+(fp - cn)^2)
    assert int(correct) == 0


def test_square_zero_is_agw_wrt():
    torch.manual_seed(0)
    for scale in (0.1, 1.0, 10.0, 50.0):
        feats = (torch.randn(24, 16, **F64) * scale).requires_grad_()
        twin = feats.detach().clone().requires_grad_()
        labels = torch.arange(6).repeat_interleave(4)
        adp, adp_correct = TripletLossADP(alpha=1, gamma=1, square=0)(feats, labels)
        wrt, wrt_correct = WeightedRegularizedTriplet()(twin, labels)
        assert torch.equal(adp, wrt) and torch.equal(adp_correct, wrt_correct)
        adp.backward()
        wrt.backward()
        assert torch.equal(feats.grad, twin.grad)


def test_squared_difference_is_clamped_and_flat_at_the_boundary():
    # fp = cn: log 2 and no gradient (y is a hard comparison)
    feats = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]], **F64)
    feats.requires_grad_()
    loss, _ = TripletLossADP(square=1)(feats, torch.tensor([0, 0, 1, 1]))
    assert float(loss.detach()) == pytest.approx(math.log(2), rel=1e-6)
    loss.backward()
    assert feats.grad.abs().max() < 1e-6
    # far violated anchors: the square saturates at 88 (softplus(88) = 88), finite in fp32
    feats = torch.tensor([[0.0, 0.0], [0.0, 50.0], [1.0, 0.0], [1.0, 50.0]])
    loss, _ = TripletLossADP(square=1)(feats, torch.tensor([0, 0, 1, 1]))
    assert float(loss) == pytest.approx(88.0, rel=1e-6)


def test_alpha_sharpens_the_weights_gamma_scales_the_square():
    torch.manual_seed(1)
    feats = torch.randn(16, 8, **F64)
    labels = torch.arange(4).repeat_interleave(4)
    fp1, cn1 = weighted_distances(feats, labels, alpha=1.0)
    fp3, cn3 = weighted_distances(feats, labels, alpha=3.0)
    assert (fp3 >= fp1 - 1e-12).all() and (cn3 <= cn1 + 1e-12).all()  # harder mining
    one = TripletLossADP(gamma=1, square=1)(feats, labels)[0]
    fp, cn = weighted_distances(feats, labels)
    y = torch.where(fp > cn, -1.0, 1.0).to(fp.dtype)
    expected = torch.nn.functional.soft_margin_loss((2 * (fp - cn) ** 2).clamp(max=88), y)
    assert float(TripletLossADP(gamma=2, square=1)(feats, labels)[0]) == pytest.approx(
        float(expected), rel=1e-12
    )
    assert float(one) != pytest.approx(float(expected))
    with pytest.raises(ValueError, match='square must be 0 or 1'):
        TripletLossADP(square=2)
