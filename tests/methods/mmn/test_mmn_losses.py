"""DCL and the MMN loss combination against references computed by hand in the test."""

from __future__ import annotations

import math

import pytest
import torch

from harness.models.losses.triplet import BatchHardTripletLoss
from methods.mmn.losses import DistributionConsistencyLoss


def dcl_by_hand(feats: torch.Tensor, head: DistributionConsistencyLoss) -> float:
    """Float64 reference: normalise, Linear, BN(batch stats), ReLU, Linear, BN, normalise, paired
    L2."""
    p = {k: getattr(head, k).detach().double() for k in head.HEAD}

    def bn(z, w, b):
        mean = z.mean(0)
        var = ((z - mean) ** 2).mean(0)  # biased, as BatchNorm in training mode
        return (z - mean) / torch.sqrt(var + 1e-5) * w + b

    z = feats.double()
    z = z / z.norm(dim=1, keepdim=True)
    z = bn(z @ p['fc1_weight'].T, p['bn1_weight'], p['bn1_bias'])
    z = bn(
        torch.clamp(z, min=0) @ p['fc2_weight'].T + p['fc2_bias'], p['bn2_weight'], p['bn2_bias']
    )
    z = z / z.norm(dim=1, keepdim=True)
    n = len(z) // 2
    return sum(math.sqrt(((z[i] - z[n + i]) ** 2).sum().item()) for i in range(n)) / n


def test_dcl_matches_the_hand_computation():
    torch.manual_seed(0)
    head = DistributionConsistencyLoss(in_dim=16, head_dim=8, seed=3)
    x = torch.randn(6, 16)
    assert head(x).item() == pytest.approx(dcl_by_hand(x, head), rel=1e-5)


def test_dcl_zero_for_identical_halves_scale_invariant_and_bounded():
    torch.manual_seed(1)
    head = DistributionConsistencyLoss(in_dim=32, head_dim=8)
    a = torch.randn(4, 32)
    assert head(torch.cat([a, a])).item() == pytest.approx(0.0, abs=1e-6)
    x = torch.randn(8, 32)
    scaled = x * torch.arange(1, 9, dtype=torch.float32).unsqueeze(1)
    assert head(scaled).item() == pytest.approx(head(x).item(), rel=1e-5)
    assert 0 < head(x).item() <= 2


def test_frozen_head_is_seeded_outside_the_global_rng_and_not_a_parameter():
    torch.manual_seed(0)
    a = DistributionConsistencyLoss(in_dim=64, head_dim=16, seed=7)
    torch.manual_seed(123)
    b = DistributionConsistencyLoss(in_dim=64, head_dim=16, seed=7)
    c = DistributionConsistencyLoss(in_dim=64, head_dim=16, seed=8)
    assert torch.equal(a.fc1_weight, b.fc1_weight) and not torch.equal(a.fc1_weight, c.fc1_weight)
    assert list(a.parameters()) == [] and a.state_dict() == {}
    # PyTorch's default Linear init: U(+-1/sqrt(fan_in)); BN weight 1, bias 0.
    bound = 1 / math.sqrt(64)
    assert a.fc1_weight.abs().max() <= bound and a.fc1_weight.abs().max() > 0.9 * bound
    assert a.fc2_bias.abs().max() <= 1 / math.sqrt(16)
    assert torch.all(a.bn1_weight == 1) and torch.all(a.bn2_bias == 0)
    # Gradients still flow to the features through the fixed projection.
    x = torch.randn(6, 64, requires_grad=True)
    a(x).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_trainable_head_option_registers_parameters():
    head = DistributionConsistencyLoss(in_dim=16, head_dim=4, trainable=True)
    assert sum(p.numel() for p in head.parameters()) == 16 * 4 + 4 + 4 + 4 * 4 + 4 + 4 + 4
    assert set(head.state_dict()) == set(head.HEAD)


def test_dcl_refuses_bad_shapes():
    head = DistributionConsistencyLoss(in_dim=8, head_dim=4)
    with pytest.raises(ValueError, match='divisible by 2'):
        head(torch.randn(5, 8))


def test_official_triplet_example_by_hand():
    # Every anchor: hardest positive at distance 2, hardest negative at 1 -> 2 - 1 + 0.3.
    feats = torch.tensor([[0.0, 0.0], [0.0, 2.0], [1.0, 0.0], [1.0, 2.0]])
    loss, correct = BatchHardTripletLoss(margin=0.3)(feats, torch.tensor([0, 0, 1, 1]))
    assert loss.item() == pytest.approx(1.3, abs=1e-6) and int(correct) == 0


def triplet_by_hand(feats: torch.Tensor, labels: torch.Tensor, margin: float = 0.3) -> float:
    f, total = feats.double(), 0.0
    for i in range(len(f)):
        d = [max(((f[i] - f[j]) ** 2).sum().item(), 1e-12) ** 0.5 for j in range(len(f))]
        ap = max(d[j] for j in range(len(f)) if labels[j] == labels[i])
        an = min(d[j] for j in range(len(f)) if labels[j] != labels[i])
        total += max(0.0, ap - an + margin)
    return total / len(f)


def ce_by_hand(logits: torch.Tensor, labels: torch.Tensor) -> float:
    z = logits.double()
    return sum((torch.logsumexp(z[i], 0) - z[i, labels[i]]).item() for i in range(len(z))) / len(z)


def test_model_losses_layout_and_weights_by_hand(tiny_mmn, batch, monkeypatch):
    """Eval mode makes every row independent, so the [VIS, M_vis, IR, M_ir] blocks the loss sees can
    be recomputed one group at a time; the three losses are then recomputed by hand from them."""
    model = tiny_mmn(num_classes=8).eval()  # the config's losses: DCL weight (delta) 0.2
    images, samples = batch(num_ids=3, k=2, size=(64, 32), seed=1)
    seen = {}
    original = model.training_outputs

    def spy(inputs, data_samples):
        out = original(inputs, data_samples)
        seen.update(
            pooled=list(out.tensors['pool'].unbind(2)),
            logits=list(out.tensors['logits'].unbind(2)),
            labels=out.labels,
        )
        return out

    monkeypatch.setattr(model, 'training_outputs', spy)
    with torch.no_grad():
        out = model.loss(images, samples)
        vis, ir = images[:6], images[6:]
        groups = [(vis, 0), (model.mmg(vis, 0), 0), (ir, 1), (model.mmg(ir, 1), 1)]
        for k in range(4):
            stripes = [model.stripe_features(model.backbone(x, m))[k] for x, m in groups]
            expected = torch.cat(stripes)
            torch.testing.assert_close(seen['pooled'][k], expected, rtol=1e-5, atol=1e-5)

    labels = samples['label'][:6]
    labels_4b, labels_2b = labels.repeat(4), labels.repeat(2)
    pooled, logits = seen['pooled'], seen['logits']
    id_ref = sum(ce_by_hand(z, labels_4b) for z in logits) / 4
    tri_ref, dcl_ref = 0.0, 0.0
    for f in pooled:
        b = 6
        v, mv, i, mi = f[:b], f[b : 2 * b], f[2 * b : 3 * b], f[3 * b :]
        for x, y in ((v, i), (v, mi), (mv, i), (mv, mi)):
            tri_ref += triplet_by_hand(torch.cat([x, y]), labels_2b)
        dcl_ref += dcl_by_hand(torch.cat([mv, mi]), model.losses['dcl'])
    assert out['loss_id'].item() == pytest.approx(id_ref, rel=1e-5)
    assert out['loss_tri'].item() == pytest.approx(tri_ref / 16, rel=1e-5)
    assert out['loss_dcl'].item() == pytest.approx(0.2 * dcl_ref / 4, rel=1e-5)
    assert 0 <= out['acc_id'].item() <= 1
    assert 'acc_id' not in [k for k in out if k.startswith('loss')]


def test_initial_id_loss_is_about_ln_c(tiny_mmn, batch):
    # Classifier weights ~ N(0, 0.001): logits are nearly 0, CE ~ ln(num_classes).
    model = tiny_mmn(num_classes=50)
    images, samples = batch(num_ids=4, k=2, size=(64, 32))
    out = model.loss(images, samples)
    assert out['loss_id'].item() == pytest.approx(math.log(50), abs=0.02)
