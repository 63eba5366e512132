"""The DEEN model (methods/deen/model.py): structure per dataset, training and eval outputs, the
flip-summed test feature, and the ranking = test.py's distmat7 (ZYK100/LLCM@886e27c DEEN/model.py,
test.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from methods.deen.model import DEEN
from protocols.metrics import pairwise_distance

from .conftest import DEMO_SIZE, randomise_bn


def test_structure_of_the_two_networks(full_deen):
    sysu, regdb = full_deen['sysu'], full_deen['regdb']
    assert list(sysu.mfa) == ['layer1', 'layer2', 'layer3'] and list(regdb.mfa) == [
        'layer1',
        'layer2',
    ]
    assert sysu.dee.branches[0].convs[0].in_channels == 1024 and sysu.feat_dim == 2048
    assert regdb.dee.branches[0].convs[0].in_channels == 512 and regdb.feat_dim == 1024
    assert 'layer4' in sysu.backbone.shared and 'layer4' not in regdb.backbone.shared
    assert not any(k.startswith('backbone.shared.layer4') for k in regdb.state_dict())
    assert type(sysu.neck).__name__ == 'GlobalAveragePooling'
    assert sysu.head.classifier.bias is None and not sysu.head.bottleneck.bias.requires_grad


def test_parameter_counts(full_deen):
    # Stems 2 x 9,536; shared layer1-4 23,498,496 (layer1-3 8,533,760); MFA1-3 3,025,056
    # (MFA1-2 657,312); DEE 14,682,112 (3,671,040); BNNeck 2 x D; classifier D x C.
    count = {k: sum(p.numel() for p in m.parameters()) for k, m in full_deen.items()}
    assert count == {'sysu': 42_037_792, 'regdb': 13_094_176}
    assert count['sysu'] == 41_228_832 + 2048 * 395 and count['regdb'] == 12_883_232 + 1024 * 206


def test_shapes_for_384_x_144(full_deen):
    # Spec: stem 64x96x36, layer1 256x96x36, layer2 512x48x18, layer3 1024x24x9, layer4 2048x24x9;
    # DEE on 1024x24x9 (SYSU) or 512x48x18 (RegDB).
    seen = {}
    model = full_deen['sysu'].eval()
    hooks = [
        model.dee.register_forward_hook(lambda m, i, o: seen.update(dee_in=i[0].shape[1:])),
        model.backbone.stage('layer4').register_forward_hook(
            lambda m, i, o: seen.update(layer4=o.shape)
        ),
    ]
    regdb_hook = full_deen['regdb'].dee.register_forward_hook(
        lambda m, i, o: seen.update(regdb_dee_in=i[0].shape[1:])
    )
    with torch.no_grad():
        model.extract_feat(torch.randn(1, 3, 384, 144), 0)
        full_deen['regdb'].eval().embeddings(torch.randn(1, 3, 384, 144), 1)
    for h in (*hooks, regdb_hook):
        h.remove()
    assert seen['dee_in'] == (1024, 24, 9) and seen['layer4'] == (3, 2048, 24, 9)
    assert seen['regdb_dee_in'] == (512, 48, 18)


def test_mfa_blocks_start_as_the_identity(tiny_deen):
    model = tiny_deen().eval()
    x = torch.randn(2, 3, *DEMO_SIZE)
    with torch.no_grad():
        stem = model.backbone.forward_stream(x, 0)
        plain = stem
        for stage in ('layer1', 'layer2', 'layer3'):
            plain = model.backbone.stage(stage)(plain)
        plain = model.backbone.stage('layer4')(model.dee(plain))
        assert torch.equal(model.trunk(stem), plain)


def test_training_outputs_cover_six_blocks(tiny_deen, batch):
    model = tiny_deen(num_classes=5).train()
    images, samples = batch(num_ids=3, k=2, size=DEMO_SIZE)
    vis, ir = images[:6], images[6:]
    stem = torch.cat((model.backbone.forward_stream(vis, 0), model.backbone.forward_stream(ir, 1)))
    out = model.heads(stem)
    assert out['pool'].shape == (36, 256) and out['logits'].shape == (36, 5)
    assert (out['pool'] >= 0).all()  # GAP of a post-ReLU map: the ORT inner products are >= 0
    losses = model.loss(images, samples)
    assert losses['loss_ort'].item() >= 0 and all(torch.isfinite(v) for v in losses.values())
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    total.backward()
    assert model.dee.branches[1].convs[2].weight.grad.abs().sum() > 0
    assert model.mfa['layer3'].pnl.W[1].weight.grad.abs().sum() > 0


def test_training_needs_both_modalities_in_equal_numbers(tiny_deen, batch):
    model = tiny_deen().train()
    images, samples = batch(num_ids=2, k=2, size=DEMO_SIZE)
    samples = dict(samples, modality=torch.zeros_like(samples['modality']))
    with pytest.raises(ValueError, match='as many visible as infrared'):
        model.loss(images, samples)


def test_eval_returns_three_unit_embeddings_per_image(tiny_deen):
    model = randomise_bn(tiny_deen()).eval()
    x = torch.randn(4, 3, *DEMO_SIZE)
    with torch.no_grad():
        pool, bn = model.embeddings(x, 1)
    assert pool.shape == bn.shape == (12, 256)
    assert torch.allclose(pool.norm(dim=1), torch.ones(12)) and torch.allclose(
        bn.norm(dim=1), torch.ones(12)
    )
    assert not torch.allclose(pool[:4], pool[4:8])  # branch 1 differs from the original


def test_the_test_feature_is_six_flip_summed_unit_vectors(tiny_deen):
    model = randomise_bn(tiny_deen()).eval()
    x = torch.randn(3, 3, *DEMO_SIZE)
    with torch.no_grad():
        feat = model.extract_feat(x, 'infrared')
        p1, b1 = model.embeddings(x, 1)
        p2, b2 = model.embeddings(torch.flip(x, dims=[3]), 1)
    pool, bn = p1 + p2, b1 + b2  # test.py: feat = pool(x) + pool(flip x), not normalised again
    six = [pool[:3], bn[:3], pool[3:6], bn[3:6], pool[6:], bn[6:]]
    assert feat.shape == (3, 6 * 256)
    assert torch.equal(feat, torch.cat(six, dim=1))
    norms = feat.reshape(3, 6, 256).norm(dim=2)
    assert (norms > 1.0).all() and (norms <= 2.0 + 1e-6).all()  # sums of two unit vectors
    model.test_flip = False
    with torch.no_grad():
        assert torch.equal(model.extract_feat(x, 1)[:, :256], p1[:3])


def official_distmats(q6, g6):
    """test.py lines 303-311: six inner products of numpy float64 features, distmat7 and 8."""
    d = [np.matmul(q, np.transpose(g)) for q, g in zip(q6, g6)]
    return d[0] + d[2] + d[4] + d[1] + d[3] + d[5], 0.1 * (d[0] + d[2] + d[4]) + 0.9 * (
        d[1] + d[3] + d[5]
    )


def six(feat, dim):
    return [feat[:, i * dim : (i + 1) * dim].astype(np.float64) for i in range(6)]


@pytest.mark.parametrize('weights', [(1.0, 1.0), (0.1, 0.9)])
def test_ranking_equals_distmat7_or_distmat8(tiny_deen, weights):
    model = randomise_bn(tiny_deen(), seed=3).eval()
    g = torch.Generator().manual_seed(5)
    query, gallery = (
        torch.randn(6, 3, *DEMO_SIZE, generator=g),
        torch.randn(9, 3, *DEMO_SIZE, generator=g),
    )
    with torch.no_grad():
        q7, g7 = model.extract_feat(query, 1).numpy(), model.extract_feat(gallery, 0).numpy()
        model.test_weights = weights
        q, gal = model.extract_feat(query, 1).numpy(), model.extract_feat(gallery, 0).numpy()
    distmat7, distmat8 = official_distmats(six(q7, 256), six(g7, 256))
    official = distmat7 if weights == (1.0, 1.0) else distmat8
    ours = pairwise_distance(q, gal, 'inner_product')
    assert np.allclose(ours, -official, rtol=1e-6, atol=1e-6)
    assert (
        np.argsort(ours, axis=1, kind='stable') == np.argsort(-official, axis=1, kind='stable')
    ).all()


def test_cosine_would_rank_the_summed_features_differently():
    # The six flip-summed blocks are not unit vectors, so normalising their concatenation (cosine)
    # changes the order: gallery 0 has the larger inner product, gallery 1 the larger cosine.
    q = np.array([[1.0, 0.0]])
    g = np.array([[2.0, 1.0], [1.0, 0.1]])
    assert np.argmin(pairwise_distance(q, g, 'inner_product'), axis=1)[0] == 0
    assert np.argmin(pairwise_distance(q, g, 'cosine'), axis=1)[0] == 1


def test_bad_options_are_refused(tiny_deen):
    with pytest.raises(ValueError, match='last_stage'):
        tiny_deen(last_stage=2)
    with pytest.raises(ValueError, match='share_from=1'):
        tiny_deen(backbone=dict(share_from=2))
    with pytest.raises(ValueError, match='test_weights'):
        tiny_deen(test_weights=(1.0,))
    with pytest.raises(ValueError, match='losses.cpm.num_embeddings = 3, but DEE with 3'):
        tiny_deen(dee_branches=3)
    with pytest.raises(ValueError, match='losses.tri.input'):
        tiny_deen(losses=dict(tri=dict(input='feat')))
    with pytest.raises(ValueError, match='cannot be folded'):
        tiny_deen().eval().extract_feat(torch.randn(1, 3, 36, 20), 0)
    assert issubclass(DEEN, torch.nn.Module) and DEEN.gathers_global_batch


def test_batch_level_losses_see_the_gathered_batch_in_six_blocks(tiny_deen, batch, monkeypatch):
    """Under DDP the triplet and CPM get ``gather_batch(x, blocks=6)`` (the global rows in one
    process's [VIS, IR] x (original, branch 1, branch 2) order); CE and ORT, per-sample means, keep
    the local rows. A stand-in for two processes doubles each block."""
    from harness.models.loss_set import LossSet

    calls: list[int] = []

    def two_ranks(x, blocks=2):
        calls.append(blocks)
        return torch.cat([torch.cat([part, part]) for part in x.chunk(blocks)])

    forward = LossSet.forward
    monkeypatch.setattr(LossSet, 'forward', lambda self, batch: forward(self, batch, two_ranks))
    model = tiny_deen(num_classes=4).train()
    seen: dict[str, int] = {}
    for name, loss in model.losses.items():
        loss.register_forward_pre_hook(lambda m, args, name=name: seen.update({name: len(args[0])}))
    images, samples = batch(num_ids=2, k=2, size=DEMO_SIZE)
    model.loss(images, samples)
    assert set(calls) == {6}
    assert seen == {'id': 24, 'ort': 24, 'tri': 48, 'cpm': 48}
