"""MMN model: parameter count of the official forward, head initialisation, test feature, input
checks."""

from __future__ import annotations

import pytest
import torch

from harness.models.necks.bnneck import BNNeck
from harness.registry import MODELS

RESNET50_STEM = 64 * 3 * 7 * 7 + 2 * 64  # conv1 + bn1 (weight, bias)


def test_parameter_count_is_what_the_official_forward_uses(full_mmn_395):
    model = full_mmn_395
    total = sum(p.numel() for p in model.parameters())
    # Measured on the official embed_net: 26,769,814 used of 73,776,342 registered.
    assert total == 26_769_814
    # The same number from its parts: two stems + one shared layer1-4 + 4 BNNecks + 4 classifiers
    # + MMG.
    shared = sum(p.numel() for p in model.backbone.shared.parameters())
    stems = sum(p.numel() for p in model.backbone.visible.parameters()) + sum(
        p.numel() for p in model.backbone.infrared.parameters()
    )
    assert stems == 2 * RESNET50_STEM
    assert total == stems + shared + 4 * 2 * 2048 + 4 * 2048 * 395 + 22
    # The frozen DCL head is neither a parameter nor in the checkpoint.
    assert not any(k.startswith('dcl') for k in model.state_dict())


def test_head_initialisation(full_mmn_395):
    model = full_mmn_395
    assert len(model.bnnecks) == len(model.classifiers) == 4
    weights = torch.cat([bn.weight.detach() for bn in model.bnnecks])
    assert all(
        isinstance(bn, BNNeck) and not bn.bias.requires_grad and torch.all(bn.bias == 0)
        for bn in model.bnnecks
    )
    assert abs(weights.mean().item() - 1.0) < 0.002 and 0.008 < weights.std().item() < 0.012
    cls = torch.cat([c.weight.detach().flatten() for c in model.classifiers])
    assert all(c.bias is None for c in model.classifiers)
    assert abs(cls.mean().item()) < 1e-4 and 0.0009 < cls.std().item() < 0.0011


def test_registered_and_built_from_a_config():
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope('harness'):
        model = MODELS.build(
            dict(type='MMN', num_classes=6, backbone=dict(pretrained=False, blocks=(1, 1, 1, 1)))
        )
    assert type(model).__name__ == 'MMN' and model.classifiers[0].out_features == 6


def test_extract_feat_is_normalised_8192d_and_per_sample_in_eval(tiny_mmn):
    model = tiny_mmn().eval()
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        for modality in (0, 1):
            feats = model.extract_feat(x, modality)
            assert feats.shape == (3, 4 * 2048)
            torch.testing.assert_close(feats.norm(dim=1), torch.ones(3))
            torch.testing.assert_close(
                model.extract_feat(x[:1], modality), feats[:1], rtol=0, atol=1e-6
            )
        # Both stems start from the same weights (as two copies of one ImageNet ResNet); once they
        # differ, the modality code picks the stem.
        torch.testing.assert_close(model.extract_feat(x, 0), model.extract_feat(x, 1))
        model.backbone.infrared['stem'][0].weight.mul_(1.5)
        assert not torch.allclose(model.extract_feat(x, 0), model.extract_feat(x, 1))
        assert not torch.allclose(model.extract_middle_feat(x, 0), model.extract_feat(x, 0))


def test_forward_tensor_mode_uses_the_batch_modality(tiny_mmn):
    model = tiny_mmn().eval()
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        out = model(x, dict(modality=torch.tensor([1, 1])), mode='tensor')
        torch.testing.assert_close(out, model.extract_feat(x, 1))


def test_training_step_updates_mmg_and_not_frozen_parts(tiny_mmn, batch):
    model = tiny_mmn().train()
    images, samples = batch(num_ids=3, k=2, size=(64, 32))
    losses = model.loss(images, samples)
    assert {'loss_id', 'loss_tri', 'loss_dcl', 'acc_id'} <= set(losses)
    sum(v for k, v in losses.items() if k.startswith('loss')).backward()
    assert model.mmg.visible.encode.weight.grad.abs().sum() > 0
    assert model.mmg.infrared.encode.weight.grad.abs().sum() > 0
    assert model.mmg.decode.weight.grad.abs().sum() > 0
    assert all(bn.bias.grad is None for bn in model.bnnecks)


def test_refuses_batches_the_sampler_would_not_produce(tiny_mmn, batch):
    model = tiny_mmn()
    images, samples = batch(num_ids=3, k=2, size=(64, 32))
    shuffled = dict(samples, label=torch.cat([samples['label'][:6], samples['label'][6:].flip(0)]))
    with pytest.raises(ValueError, match='CrossModalityIdentitySampler'):
        model.loss(images, shuffled)
    lopsided = dict(samples, modality=torch.tensor([0] * 8 + [1] * 4))
    with pytest.raises(ValueError, match='8 visible and 4 infrared'):
        model.loss(images, lopsided)


def test_refuses_inputs_too_short_for_four_stripes(tiny_mmn):
    model = tiny_mmn().eval()
    with pytest.raises(ValueError, match='cannot be cut into 4 stripes'):
        model.extract_feat(torch.randn(1, 3, 32, 16), 0)  # layer4 height 2


def test_refuses_a_different_share_from():
    from methods.mmn.model import MMN

    with pytest.raises(ValueError, match='share_from'):
        MMN(num_classes=4, backbone=dict(pretrained=False, blocks=(1, 1, 1, 1), share_from=2))
