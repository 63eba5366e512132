"""Every MPANet loss against a value computed by hand, and the EMA-rate schedule."""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from harness.models.loss_set import config_losses
from harness.models.losses import center_cluster_loss
from methods.mpanet.hooks import MPANetEMARateHook
from methods.mpanet.losses import ema_update_rate, mutual_mean_kl, pattern_overlap_loss
from methods.mpanet.model import CONFIG

from .conftest import tiny_model


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.mean([log_softmax(logits)[i, y] for i, y in enumerate(labels)]))


def test_pattern_overlap_loss_by_hand():
    g = torch.Generator().manual_seed(1)
    masks = torch.rand(2, 3, 2, 2, generator=g)
    m = masks.double().numpy()
    total = 0.0
    for b in range(2):
        for k in range(3):
            for k2 in range(k + 1, 3):
                total += sum(m[b, k, i, j] * m[b, k2, i, j] for i in range(2) for j in range(2))
    expected = total / (2 * 3 * 2 / 2)
    assert pattern_overlap_loss(masks).item() == pytest.approx(expected, rel=1e-6)


def test_center_cluster_loss_by_hand_with_unequal_identity_sizes():
    g = torch.Generator().manual_seed(2)
    feats = 0.2 * torch.randn(7, 4, generator=g)
    labels = torch.tensor([2, 0, 2, 1, 0, 2, 1])
    f, y, rho = feats.double().numpy(), labels.numpy(), 0.7
    centers = {p: f[y == p].mean(0) for p in set(y.tolist())}
    intra = np.mean([np.linalg.norm(f[i] - centers[y[i]]) for i in range(len(y))])
    inter = []
    for p in sorted(centers):  # one anchor per identity; mean over the other identities' samples
        others = [
            max(0.0, rho - np.linalg.norm(centers[p] - centers[y[j]]))
            for j in range(len(y))
            if y[j] != p
        ]
        inter.append(np.mean(others))
    expected = intra + np.mean(inter)
    assert np.mean(inter) > 0  # the hinge is active, so the inter term is tested
    assert center_cluster_loss(feats, labels, margin=rho).item() == pytest.approx(
        expected, rel=1e-5
    )


def test_center_cluster_loss_equals_the_official_anchor_form_on_contiguous_blocks():
    g = torch.Generator().manual_seed(3)
    k, feats = 4, 0.3 * torch.randn(12, 5, generator=g)
    labels = torch.arange(3).repeat_interleave(k)
    f, y = feats.double().numpy(), labels.numpy()
    centers = np.stack([f[y == y[i]].mean(0) for i in range(12)])
    intra = np.mean(np.linalg.norm(f - centers, axis=1))
    anchors = [
        np.mean(
            [
                max(0.0, 0.7 - np.linalg.norm(centers[a] - centers[j]))
                for j in range(12)
                if y[j] != y[a]
            ]
        )
        for a in range(0, 12, k)
    ]
    expected = intra + np.mean(anchors)
    # Shuffling the batch must not change the value (the official anchors need contiguous blocks).
    perm = torch.randperm(12, generator=g)
    assert center_cluster_loss(feats, labels).item() == pytest.approx(expected, rel=1e-5)
    assert center_cluster_loss(feats[perm], labels[perm]).item() == pytest.approx(
        expected, rel=1e-5
    )


def test_center_cluster_loss_has_a_finite_gradient_when_a_feature_is_its_centre():
    feats = torch.tensor([[1.0, 2.0], [3.0, 1.0], [3.0, 1.0]], requires_grad=True)
    loss = center_cluster_loss(feats, torch.tensor([0, 1, 1]))
    loss.backward()
    assert torch.isfinite(feats.grad).all()


def test_mutual_mean_kl_is_kl_student_to_teacher_with_gradient_through_the_student():
    g = torch.Generator().manual_seed(4)
    s = torch.randn(3, 4, generator=g, requires_grad=True)
    t = torch.randn(3, 4, generator=g, requires_grad=True)
    lp, lq = log_softmax(s.detach().double().numpy()), log_softmax(t.detach().double().numpy())
    per_row = (np.exp(lp) * (lp - lq)).sum(1)
    loss = mutual_mean_kl(s, t)
    assert loss.item() == pytest.approx(per_row.mean(), rel=1e-6)
    # The official call: KLDivLoss('batchmean')(log_softmax(teacher), softmax(student)).
    official = torch.nn.KLDivLoss(reduction='batchmean')(
        torch.log_softmax(t, 1), torch.softmax(s, 1)
    )
    assert loss.item() == pytest.approx(official.item(), rel=1e-6)
    loss.backward()
    grad = np.exp(lp) * (lp - lq - per_row[:, None]) / 3
    assert np.allclose(s.grad.numpy(), grad, atol=1e-6)
    assert t.grad is None


def test_model_losses_by_hand_with_crossed_mean_classifiers(batch):
    model = tiny_model(num_classes=4)
    with torch.no_grad():  # distinct teachers, so a wrong (uncrossed) pairing changes the KL
        model.mean_classifier_visible.weight.normal_(0, 0.01)
        model.mean_classifier_infrared.weight.normal_(0, 0.01)
    model.set_epoch(130)
    r = 0.2 * 100 / 131
    ref = copy.deepcopy(model)
    images, samples = batch(num_ids=3, k=2, size=(32, 16))
    labels = samples['label'].numpy()
    vis, ir = samples['modality'].numpy() == 0, samples['modality'].numpy() == 1
    tv0 = model.mean_classifier_visible.weight.detach().double().numpy()
    ti0 = model.mean_classifier_infrared.weight.detach().double().numpy()

    losses = model.train().loss(images, samples)

    with torch.no_grad():
        feats, masks = ref.train().embed(images)
        h = ref.neck(feats).double().numpy()
    w = {
        n: getattr(ref, n).weight.detach().double().numpy()
        for n in ('classifier', 'classifier_visible', 'classifier_infrared')
    }
    teacher_v = (1 - r) * tv0 + r * w['classifier_visible']
    teacher_i = (1 - r) * ti0 + r * w['classifier_infrared']
    student = np.concatenate(
        [h[vis] @ w['classifier_visible'].T, h[ir] @ w['classifier_infrared'].T]
    )
    teacher = np.concatenate([h[vis] @ teacher_i.T, h[ir] @ teacher_v.T])  # crossed
    lp, lq = log_softmax(student), log_softmax(teacher)
    kl = float((np.exp(lp) * (lp - lq)).sum(1).mean())
    expected = dict(
        loss_id=cross_entropy(h @ w['classifier'].T, labels),
        loss_id_visible=cross_entropy(h[vis] @ w['classifier_visible'].T, labels[vis]),
        loss_id_infrared=cross_entropy(h[ir] @ w['classifier_infrared'].T, labels[ir]),
        loss_kl=2.5 * kl,
        loss_pattern=0.5 * pattern_overlap_loss(masks).item(),
        loss_center_cluster=center_cluster_loss(feats, samples['label'], 0.7).item(),
    )
    assert set(k for k in losses if k.startswith('loss')) == set(expected)
    for key, value in expected.items():
        assert losses[key].item() == pytest.approx(value, rel=1e-4, abs=1e-6), key
    assert kl > 1e-6
    assert np.allclose(model.mean_classifier_visible.weight.detach().numpy(), teacher_v, atol=1e-6)
    assert np.allclose(model.mean_classifier_infrared.weight.detach().numpy(), teacher_i, atol=1e-6)


def test_effective_loss_weights_follow_the_constructor(batch):
    images, samples = batch()
    base = tiny_model().train().loss(images, samples)
    losses = config_losses(CONFIG)
    for name, weight in (('id_visible', 0.5), ('id_infrared', 0.5), ('kl', 1.0), ('pattern', 1.0)):
        losses[name]['weight'] = weight
    halved = tiny_model(losses=losses).train()
    halved = halved.loss(images, samples)
    for key in ('loss_id_visible', 'loss_id_infrared'):
        assert halved[key].item() == pytest.approx(0.5 * base[key].item(), rel=1e-5)
    assert halved['loss_kl'].item() == pytest.approx(base['loss_kl'].item() / 2.5, rel=1e-4)
    assert halved['loss_pattern'].item() == pytest.approx(2 * base['loss_pattern'].item(), rel=1e-5)
    assert halved['loss_id'].item() == pytest.approx(base['loss_id'].item(), rel=1e-5)


@pytest.mark.parametrize(
    'epoch, rate',
    [(1, 0.2), (99, 0.2), (100, 0.2 * 100 / 101), (120, 0.2 * 100 / 121), (140, 0.2 * 100 / 141)],
)
def test_ema_rate_schedule(epoch, rate):
    assert ema_update_rate(epoch) == pytest.approx(rate, rel=1e-12)
    model = tiny_model()
    # runner.epoch is 0-based
    MPANetEMARateHook().before_train_epoch(SimpleNamespace(model=model, epoch=epoch - 1))
    assert model.ema_rate == pytest.approx(rate, rel=1e-12)


def test_ema_rate_values_quoted_by_the_spec():
    assert [round(ema_update_rate(e), 3) for e in (100, 120, 140)] == [0.198, 0.165, 0.142]
    with pytest.raises(ValueError):
        ema_update_rate(0)
    assert math.isclose(ema_update_rate(1, base_rate=0.5), 0.5)


def test_losses_stay_float32_under_autocast(batch):
    # 128 x 64 keeps every stage's map at least 8 x 4. At the shared 32 x 16 batch, layer3's
    # stride-2 3 x 3 convolution has a 2 x 1 output, and oneDNN's CPU bf16 kernel for that shape
    # gave different values from run to run (sometimes NaN) with identical weights and input:
    # the test then measured that kernel, not the dtype of MPANet's losses.
    model = tiny_model().train()
    images, samples = batch(size=(128, 64))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model.loss(images, samples)
        masks = torch.rand(2, 6, 3, 2).bfloat16()
        assert pattern_overlap_loss(masks).dtype == torch.float32
        feats = 300 * torch.randn(4, 14336).bfloat16()
        assert center_cluster_loss(feats, torch.tensor([0, 0, 1, 1])).dtype == torch.float32
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
