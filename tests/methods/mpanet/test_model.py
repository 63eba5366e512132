"""Architecture: parameter counts (measured on the official model, README), shapes, the test
feature, the EMA copies."""

from __future__ import annotations

import copy

import torch

from methods.mpanet.model import MPANet

from .conftest import tiny_model

INFERENCE_MODULES = ('backbone', 'mam3', 'mam4', 'pattern_conv', 'neck')


def test_parameter_counts_match_the_official_model_for_395_classes():
    model = MPANet(num_classes=395, backbone=dict(depth=50, last_stride=1, pretrained=False))
    params = dict(model.named_parameters())
    assert sum(p.numel() for p in params.values()) == 52_517_958
    used = sum(p.numel() for n, p in params.items() if n.split('.')[0] in INFERENCE_MODULES)
    assert used == 24_204_358
    trainable = sum(p.numel() for p in params.values() if p.requires_grad)
    assert (
        trainable == 41_178_182
    )  # official model: excludes the two EMA copies and the BNNeck bias
    # Everything outside INFERENCE_MODULES is a classifier the test feature never touches.
    assert {n.split('.')[0] for n in params} - set(INFERENCE_MODULES) == {
        'classifier',
        'classifier_visible',
        'classifier_infrared',
        'mean_classifier_visible',
        'mean_classifier_infrared',
    }


def test_extract_feat_is_the_bnneck_output_and_ignores_classifiers_and_modality(model, batch):
    model.eval()
    images, _ = batch()
    feat = model.extract_feat(images, 0)
    assert feat.shape == (len(images), 2048 * 7) and feat.dtype == torch.float32
    assert torch.equal(feat, model.extract_feat(images, 1))
    with torch.no_grad():
        for name in (
            'classifier',
            'classifier_visible',
            'classifier_infrared',
            'mean_classifier_visible',
            'mean_classifier_infrared',
        ):
            getattr(model, name).weight.normal_()
        emb, _ = model.embed(images)
        neck = model.neck
        by_hand = (emb - neck.running_mean) / torch.sqrt(
            neck.running_var + neck.eps
        ) * neck.weight + neck.bias
    assert torch.allclose(model.extract_feat(images, 0), by_hand, atol=1e-5)
    assert torch.equal(feat, model.extract_feat(images, 0))


def test_embedding_is_masked_gap_of_six_patterns_then_global(model, batch):
    model.eval()
    images, _ = batch(num_ids=1, k=2)
    with torch.no_grad():
        fmap = model.trunk(images)
        emb, masks = model.embed(images)
    b, c, h, w = fmap.shape
    assert masks.shape == (b, 6, h, w) and float(masks.min()) > 0 and float(masks.max()) < 1
    for k in range(6):  # f_k = mean_u A_k(u) F(:, u), not normalised by the mask mass
        ref = (masks[:, k : k + 1] * fmap).mean(dim=(2, 3))
        assert torch.allclose(emb[:, k * c : (k + 1) * c], ref, atol=1e-5)
    assert torch.allclose(emb[:, 6 * c :], fmap.mean(dim=(2, 3)), atol=1e-6)


def test_last_stride_one_gives_output_stride_16(model):
    with torch.no_grad():
        fmap = model.eval().trunk(torch.randn(1, 3, 64, 32))
    assert fmap.shape == (1, 2048, 4, 2)


def test_mam_mixes_input_and_instance_norm_with_the_gate():
    model = tiny_model()
    mam = model.mam4
    x = torch.randn(2, 2048, 3, 2)
    with torch.no_grad():
        a = x.mean(dim=(2, 3))
        w1, w2 = mam.gate[0].weight[:, :, 0, 0], mam.gate[2].weight[:, :, 0, 0]
        m = torch.sigmoid(torch.relu(a @ w1.t()) @ w2.t())
        mu = x.mean(dim=(2, 3), keepdim=True)
        var = x.var(dim=(2, 3), unbiased=False, keepdim=True)
        gate = m[:, :, None, None]
        ref = gate * x + (1 - gate) * (x - mu) / torch.sqrt(var + 1e-5)
        assert torch.allclose(mam(x), ref, atol=1e-5)
        # per-sample statistics at test time too
        assert torch.allclose(mam.eval()(x), ref, atol=1e-5)
    assert list(dict(mam.named_buffers())) == []


def test_bnneck_bias_frozen_teachers_start_equal_and_get_no_gradient(model, batch):
    assert not model.neck.bias.requires_grad and float(model.neck.bias.abs().sum()) == 0
    assert torch.equal(model.mean_classifier_visible.weight, model.classifier_visible.weight)
    assert torch.equal(model.mean_classifier_infrared.weight, model.classifier_infrared.weight)
    assert (
        model.mean_classifier_visible.weight.data_ptr()
        != model.classifier_visible.weight.data_ptr()
    )
    images, samples = batch()
    losses = model.train().loss(images, samples)
    sum(v for k, v in losses.items() if k.startswith('loss')).backward()
    assert model.mean_classifier_visible.weight.grad is None
    assert model.mean_classifier_infrared.weight.grad is None
    assert model.classifier_visible.weight.grad is not None
    assert model.neck.bias.grad is None
    # No optimiser step yet: the first EMA update mixes equal weights, so teachers still equal
    # students.
    assert torch.allclose(model.mean_classifier_visible.weight, model.classifier_visible.weight)


def test_ema_update_is_the_weighted_mix_with_the_current_rate(model):
    with torch.no_grad():
        model.classifier_visible.weight.normal_()
        model.classifier_infrared.weight.normal_()
    tv = model.mean_classifier_visible.weight.detach().clone()
    ti = model.mean_classifier_infrared.weight.detach().clone()
    sv = model.classifier_visible.weight.detach().clone()
    si = model.classifier_infrared.weight.detach().clone()
    model.set_epoch(120)
    r = 0.2 * 100 / 121
    model.update_mean_classifiers()
    assert torch.allclose(model.mean_classifier_visible.weight, (1 - r) * tv + r * sv, atol=1e-7)
    assert torch.allclose(model.mean_classifier_infrared.weight, (1 - r) * ti + r * si, atol=1e-7)
    assert torch.equal(model.classifier_visible.weight, sv)  # students untouched


def test_loss_refuses_a_batch_without_both_modalities(model, batch):
    images, samples = batch()
    samples['modality'] = torch.zeros_like(samples['modality'])
    try:
        model.train().loss(images, samples)
    except ValueError as err:
        assert 'infrared' in str(err)
    else:
        raise AssertionError('a visible-only batch must be refused')


def test_state_dict_is_pure_tensors_and_reloads(model, batch):
    state = model.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    other = tiny_model(seed=1)
    other.load_state_dict(copy.deepcopy(state), strict=True)
    images, _ = batch()
    assert torch.equal(model.eval().extract_feat(images, 0), other.eval().extract_feat(images, 0))
