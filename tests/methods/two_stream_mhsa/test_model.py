"""TwoStreamMHSA at demo scale: shapes, auxiliary modality, routing, options, optimiser groups."""

from __future__ import annotations

import pytest
import torch
from mmengine.optim import build_optim_wrapper

from harness.models.data_preprocessor import IMAGENET_MEAN, IMAGENET_STD
from harness.models.loss_set import config_losses
from methods.two_stream_mhsa.aux_modality import GRAY_WEIGHTS
from methods.two_stream_mhsa.mhsa import BoTBottleneck
from methods.two_stream_mhsa.model import AUX, CONFIG, TwoStreamMHSA

SIZE = (96, 48)  # layer4 map 6 x 3
P, K, CLASSES = 2, 2, 7
DEMO = dict(input_size=SIZE, backbone=dict(pretrained=False, blocks=(1, 1, 1, 1)))


def losses(**changes) -> dict:
    """The config's loss set, entries changed key by key (``None`` removes one)."""
    out = config_losses(CONFIG)
    for name, change in changes.items():
        out[name] = None if change is None else {**(out.get(name) or {}), **change}
    return out


HCTRI = dict(  # HcTri (hijune6/...): on the concatenated parts + w * on each part
    hc=None,
    hctri=dict(type='HeteroCenterTripletLoss', input='emb', parts='concat'),
    hctri_parts=dict(type='HeteroCenterTripletLoss', input='emb', parts='sum'),
)
TRIPLET = dict(type='BatchHardTripletLoss', input='emb_l2', parts='concat', margin=0.3)


def build(**kw) -> TwoStreamMHSA:
    torch.manual_seed(0)
    return TwoStreamMHSA(CLASSES, **{**DEMO, **kw})


def batch(p: int = P, k: int = K, seed: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``[visible | infrared]``, identity-major, same identity order (the harness layout)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randperm(CLASSES, generator=g)[:p].repeat_interleave(k)
    labels = torch.cat([ids, ids])
    modality = torch.tensor([0] * (p * k) + [1] * (p * k))
    return torch.randn(2 * p * k, 3, *SIZE, generator=g), dict(label=labels, modality=modality)


@pytest.fixture(scope='module')
def model() -> TwoStreamMHSA:
    return build()


def test_training_forward_shapes_with_aux(model: TwoStreamMHSA) -> None:
    """P = K = 2 with aux -> 12 samples, 6 logits [12, C], 6 unit-norm feats [12, 512]."""
    model.train()
    x, ds = batch()
    out = model.forward_train(x, ds)
    assert len(out['logits']) == 6 and len(out['embs']) == 6
    assert all(s.shape == (12, CLASSES) for s in out['logits'])
    assert all(e.shape == (12, 512) for e in out['embs'])
    # canonical order [V | A | I], A carries its visible source's labels
    assert out['modality'].tolist() == [0] * 4 + [AUX] * 4 + [1] * 4
    assert torch.equal(out['label'], torch.cat([ds['label'][:4], ds['label'][:4], ds['label'][4:]]))
    losses = model.loss(x, ds)
    assert set(losses) == {'loss_id', 'loss_hc', 'acc_id'}
    assert all(torch.isfinite(v) for v in losses.values())


def test_extract_feat_is_concatenated_unit_parts(model: TwoStreamMHSA) -> None:
    model.eval()
    x, _ = batch()
    with torch.no_grad():
        for modality in (0, 1):
            feat = model.extract_feat(x[:3], modality)
            assert feat.shape == (3, 6 * 512)
            torch.testing.assert_close(feat.view(3, 6, 512).norm(dim=2), torch.ones(3, 6))
        # each modality has its own stream
        assert not torch.allclose(model.extract_feat(x[:3], 0), model.extract_feat(x[:3], 1))
        model.test_feat = 'pool'
        try:
            pool = model.extract_feat(x[:2], 1)
        finally:
            model.test_feat = 'emb'
    assert pool.shape == (2, 6 * 2048)
    torch.testing.assert_close(pool.view(2, 6, 2048).norm(dim=2), torch.ones(2, 6))


def test_gray_aux_is_the_luma_of_each_visible_image(model: TwoStreamMHSA) -> None:
    """A differs from V only by the grayscale transform (equal channels in pixel space)."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255
    pixels = torch.rand(3, 3, *SIZE) * 255
    x_v, x_a = model._make_aux((pixels - mean) / std)
    torch.testing.assert_close(x_v, (pixels - mean) / std)
    a_pixels = x_a * std + mean
    luma = sum(w * pixels[:, c] for c, w in enumerate(GRAY_WEIGHTS))
    for c in range(3):
        torch.testing.assert_close(a_pixels[:, c], luma, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize(
    'route,expected',
    [('infrared', {0: [4], 1: [8]}), ('visible', {0: [8], 1: [4]}), ('third', {0: [4], 1: [4]})],
)
def test_aux_route_decides_which_stream_sees_the_aux_block(route: str, expected: dict) -> None:
    m = build(aux_route=route, share_from=3).train()
    seen: dict[int, list[int]] = {0: [], 1: []}
    original = m.backbone.forward_stream

    def spy(x, modality):
        seen[int(modality)].append(len(x))
        return original(x, modality)

    m.backbone.forward_stream = spy
    x, ds = batch()
    m.loss(x, ds)
    assert seen == expected
    assert (m.backbone_aux_stream is not None) == (route == 'third')


def test_the_loss_does_not_depend_on_batch_order(model: TwoStreamMHSA) -> None:
    model.train()
    x, ds = batch(seed=3)
    perm = torch.cat([torch.randperm(4), 4 + torch.randperm(4)])
    a = model.loss(x, ds)
    b = model.loss(x[perm], {k: v[perm] for k, v in ds.items()})
    for key in ('loss_id', 'loss_hc'):
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


def test_bad_inputs_are_refused(model: TwoStreamMHSA) -> None:
    x, ds = batch()
    with pytest.raises(ValueError, match='input_size'):
        model.loss(torch.randn(8, 3, 128, 64), ds)
    with pytest.raises(ValueError, match='both visible'):
        model.loss(x, dict(ds, modality=torch.zeros(8, dtype=torch.long)))
    with pytest.raises(ValueError, match='input_size'):
        model.extract_feat(torch.randn(2, 3, 64, 32), 0)
    with pytest.raises(ValueError, match='pos_enc'):
        build(pos_enc='sinusoid')
    with pytest.raises(ValueError, match='pairs'):
        build(losses=losses(hc=dict(pairs=[(0, 0)])))
    with pytest.raises(ValueError, match='num_parts'):
        build(num_parts=8)  # the map is 6 rows tall


def test_non_shared_default_has_bot_blocks_in_each_stream(model: TwoStreamMHSA) -> None:
    assert model.backbone.share_from == 5 and len(model.backbone.shared) == 0
    for stream in (model.backbone.visible, model.backbone.infrared):
        assert all(isinstance(b, BoTBottleneck) for b in stream['layer4'])
    assert (
        model.backbone.visible['layer4'][0].mhsa_branch.mhsa
        is not model.backbone.infrared['layer4'][0].mhsa_branch.mhsa
    )


@pytest.mark.parametrize('share_from', [1, 4])
def test_share_from_places_bot_blocks_per_stream_or_once(share_from: int) -> None:
    m = build(share_from=share_from).train()
    bots = [mod for mod in m.modules() if isinstance(mod, BoTBottleneck)]
    assert len(bots) == (2 if share_from == 5 else 1)  # one layer4 block per stream at demo scale
    x, ds = batch()
    sum(v for k, v in m.loss(x, ds).items() if k.startswith('loss')).backward()


@pytest.mark.parametrize(
    'kw,keys',
    [
        (
            dict(
                pos_enc='abs', aux='caj', losses=losses(hc=dict(pairs=[(0, 1)], reduction='mean'))
            ),
            {'loss_id', 'loss_hc'},
        ),
        (
            dict(
                pos_enc='none', rel_pos_scaled=False, aux='random_gray', bot_zero_init_last_bn=True
            ),
            {'loss_id', 'loss_hc'},
        ),
        (
            dict(losses=losses(**HCTRI), part_head='hctri', part_pool='gem', aux='xmodality'),
            {'loss_id', 'loss_hctri', 'loss_hctri_parts'},
        ),
        (
            dict(
                losses=losses(id=dict(label_smoothing=0.1), tri=TRIPLET),
                part_pool='max',
                dropout=0.5,
            ),
            {'loss_id', 'loss_hc', 'loss_tri', 'acc_tri'},
        ),
    ],
)
def test_options_train_one_step(kw: dict, keys: set) -> None:
    m = build(**kw).train()
    x, ds = batch()
    losses = m.loss(x, ds)
    assert set(losses) == keys | {'acc_id'}
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    total.backward()
    assert torch.isfinite(total)
    grads = [p.grad for p in m.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    if kw.get('aux') == 'xmodality':
        assert m.aux_generator.net[0].weight.grad is not None
    if kw.get('part_head') == 'hctri':
        assert m.part_heads[0].embed[0].out_features == 256


def test_last_stride_two_bot_attends_before_pooling() -> None:
    m = build(backbone=dict(pretrained=False, blocks=(1, 1, 1, 1), last_stride=2), num_parts=3)
    assert m.layer4_in_size == (6, 3) and m.feat_size == (3, 2)
    x, ds = batch()
    m.train().loss(x, ds)


def test_optimiser_groups_put_mhsa_with_the_new_layers(model: TwoStreamMHSA) -> None:
    """The config's paramwise keys: lr 0.01 for heads + MHSA branch, 0.001 for the pretrained
    trunk."""
    from pathlib import Path

    from mmengine.config import Config

    configs = Path(__file__).parents[3] / 'methods' / 'two_stream_mhsa' / 'configs'
    cfg = Config.fromfile(str(configs / 'tsmhsa_sysu.py'))
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper.to_dict())
    lr_of = {}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            lr_of[id(p)] = group['lr']
    names = dict(model.named_parameters())
    for name, p in names.items():
        new = 'mhsa_branch' in name or not name.startswith('backbone')
        assert lr_of[id(p)] == pytest.approx(0.01 if new else 0.001), name
    assert any('mhsa_branch.mhsa.rel_h' in n for n in names)
    assert any('mhsa_branch.bn' in n for n in names)
