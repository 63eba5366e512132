"""AGW model: architecture facts from the official code, losses wiring, per-modality stems."""

import pytest
import torch
import torch.nn.functional as F
from torchvision.models import resnet50

from harness.models import CrossModalityReID
from harness.models.backbones.non_local import non_local_positions
from harness.models.losses import BatchHardTripletLoss, WeightedRegularizedTriplet
from methods.agw.model import AGW

DEMO = dict(pretrained=False, blocks=(1, 1, 1, 1))


def _conv(k, cin, cout):
    return k * k * cin * cout


def _bottleneck(cin, planes, downsample):
    n = (
        _conv(1, cin, planes)
        + _conv(3, planes, planes)
        + _conv(1, planes, 4 * planes)
        + 2 * (planes + planes + 4 * planes)
    )
    return n + (_conv(1, cin, 4 * planes) + 2 * 4 * planes if downsample else 0)


def _resnet50_counts():
    stem = _conv(7, 3, 64) + 2 * 64
    layers, cin = 0, 64
    for planes, blocks in ((64, 3), (128, 4), (256, 6), (512, 3)):
        layers += _bottleneck(cin, planes, True) + sum(
            _bottleneck(4 * planes, planes, False) for _ in range(blocks - 1)
        )
        cin = 4 * planes
    return stem, layers


def _non_local(c):  # g, theta, phi: C -> 1 conv with bias; W: 1 -> C conv with bias + BN(C)
    return 3 * (c + 1) + (c + c) + 2 * c


@pytest.fixture
def demo():
    """A fresh demo model per test: tests put it in train mode, which moves its BN statistics."""
    torch.manual_seed(0)
    return AGW(num_classes=6, backbone=DEMO)


def test_full_model_parameter_count():
    stem, layers = _resnet50_counts()
    tv = resnet50()
    assert stem + layers == sum(
        p.numel() for n, p in tv.named_parameters() if not n.startswith('fc.')
    )
    expected = (
        2 * stem
        + layers  # two modality stems + shared layer1-4
        + 2 * _non_local(512)
        + 3 * _non_local(1024)
        + 2 * 2048  # BNNeck (its frozen bias included)
        + 2048 * 395
    )  # bias-free classifier, SYSU train+val ids
    model = AGW(num_classes=395, backbone=dict(pretrained=False))
    assert sum(p.numel() for p in model.parameters()) == expected
    assert model.feat_dim == 2048


def test_agw_is_the_generic_model_built_from_its_config():
    model = AGW(num_classes=4, backbone=DEMO)
    assert type(model) is CrossModalityReID
    assert type(model.backbone).__name__ == 'TwoStreamResNet' and model.backbone.share_from == 1
    assert type(model.neck).__name__ == 'GeneralizedMeanPooling' and model.neck.p == 3.0
    assert isinstance(model.losses['tri'], WeightedRegularizedTriplet)
    assert model.loss_inputs == {'id': 'logits', 'tri': 'pool'}
    assert model.loss_weights == {'id': 1.0, 'tri': 1.0}
    assert model.test_feature == 'bn'


def test_non_local_positions_follow_the_official_indexing():
    # AGW: layers [3, 4, 6, 3], non_layers [0, 2, 3, 0]
    assert [non_local_positions(n, k) for n, k in zip((3, 4, 6, 3), (0, 2, 3, 0))] == [
        [],
        [2, 3],
        [3, 4, 5],
        [],
    ]
    assert non_local_positions(1, 3) == [0] and non_local_positions(2, 3) == [0, 1]
    assert AGW(4, backbone=dict(pretrained=False)).non_local.positions == {
        'layer2': [2, 3],
        'layer3': [3, 4, 5],
    }
    assert AGW(4, non_local=None, backbone=DEMO).non_local is None


def test_non_local_blocks_run_right_after_their_blocks():
    model = AGW(num_classes=4, backbone=dict(pretrained=False, blocks=(1, 3, 4, 1))).eval()
    calls = []
    for stage in ('layer1', 'layer2', 'layer3', 'layer4'):
        for i, block in enumerate(model.backbone.shared[stage]):
            block.register_forward_hook(lambda *a, name=f'{stage}.{i}': calls.append(name))
    for stage, blocks in model.non_local.items():
        for j, block in enumerate(blocks):
            block.register_forward_hook(lambda *a, name=f'NL-{stage}.{j}': calls.append(name))
    with torch.no_grad():
        model.extract_feat(torch.randn(2, 3, 64, 32), 0)
    assert calls == [
        'layer1.0',
        'layer2.0',
        'layer2.1',
        'NL-layer2.0',
        'layer2.2',
        'NL-layer2.1',
        'layer3.0',
        'layer3.1',
        'NL-layer3.0',
        'layer3.2',
        'NL-layer3.1',
        'layer3.3',
        'NL-layer3.2',
        'layer4.0',
    ]


def test_head_initialisation(demo):
    head = demo.head
    assert head.classifier.bias is None
    assert head.classifier.weight.std().item() == pytest.approx(0.001, rel=0.2)
    assert not head.bottleneck.bias.requires_grad
    assert head.bottleneck.weight.mean().item() == pytest.approx(1.0, abs=0.01)


def test_loss_wiring_id_on_bn_logits_and_wrt_on_pre_bn_feature(demo, batch):
    inputs, samples = batch(num_ids=4, size=(64, 32))
    captured = {}
    handle = demo.head.bottleneck.register_forward_hook(
        lambda m, i, o: captured.update(pre=i[0], post=o)
    )
    demo.train()
    out = demo.loss(inputs, samples)
    handle.remove()
    assert set(out) == {'loss_id', 'loss_tri', 'acc_id', 'acc_tri'}
    assert captured['pre'].shape == (16, 2048)
    labels = samples['label']  # this batch is already [visible | infrared]
    ref_tri, _ = WeightedRegularizedTriplet()(captured['pre'], labels)
    ref_id = F.cross_entropy(demo.head.classifier(captured['post']), labels)
    assert torch.allclose(out['loss_tri'], ref_tri) and torch.allclose(out['loss_id'], ref_id)


def test_loss_weights_scale_the_logged_losses(batch):
    torch.manual_seed(0)
    plain = AGW(num_classes=6, backbone=DEMO).train()
    torch.manual_seed(0)
    weighted = AGW(num_classes=6, backbone=DEMO, losses=dict(tri=dict(weight=0.25))).train()
    inputs, samples = batch(num_ids=4, size=(64, 32), seed=5)
    a, b = plain.loss(inputs, samples), weighted.loss(inputs, samples)
    assert torch.allclose(b['loss_tri'], 0.25 * a['loss_tri'])
    assert torch.allclose(b['loss_id'], a['loss_id'])


def test_backward_reaches_both_stems_non_local_and_head_but_not_bnneck_bias(batch):
    torch.manual_seed(1)
    model = AGW(num_classes=6, backbone=DEMO).train()
    # a fresh non-local block outputs x (zero BN): give it weight so its inner convs get gradients
    for blocks in model.non_local.values():
        for block in blocks:
            torch.nn.init.constant_(block.W[1].weight, 0.1)
    inputs, samples = batch(num_ids=4, size=(64, 32), seed=1)
    out = model.loss(inputs, samples)
    (out['loss_id'] + out['loss_tri']).backward()
    named = dict(model.named_parameters())
    for key in (
        'backbone.visible.stem.0.weight',
        'backbone.infrared.stem.0.weight',
        'backbone.shared.layer4.0.conv3.weight',
        'non_local.layer2.0.theta.weight',
        'non_local.layer3.0.W.1.weight',
        'head.bottleneck.weight',
        'head.classifier.weight',
    ):
        assert named[key].grad is not None and named[key].grad.abs().sum() > 0, key
    assert named['head.bottleneck.bias'].grad is None


def test_loss_derives_modalities_from_the_batch_not_its_layout(demo, batch):
    inputs, samples = batch(num_ids=4, size=(64, 32), seed=2)
    demo.train()
    ref = demo.loss(inputs, samples)
    perm = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(3))
    shuffled = demo.loss(inputs[perm], {k: v[perm] for k, v in samples.items()})
    # BN statistics and both losses are order-invariant once each stem gets its own images
    assert torch.allclose(ref['loss_id'], shuffled['loss_id'], atol=1e-4)
    assert torch.allclose(ref['loss_tri'], shuffled['loss_tri'], atol=1e-4)
    with pytest.raises(ValueError, match='visible and infrared'):
        demo.loss(inputs, dict(samples, modality=torch.zeros(16, dtype=torch.long)))


def test_extract_feat_uses_the_modality_stem_and_normalises(demo):
    # The two stems start as copies of one network (the official code loads the same ImageNet
    # weights into both), so untrained they compute the same features: make them differ.
    with torch.no_grad():
        for p in demo.backbone.infrared['stem'].parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    demo.eval()
    x = torch.randn(3, 3, 64, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        vis, ir = demo.extract_feat(x, 0), demo.extract_feat(x, 1)
        assert vis.shape == (3, 2048)
        assert torch.allclose(vis.norm(dim=1), torch.ones(3))
        assert torch.allclose(ir.norm(dim=1), torch.ones(3))
        assert not torch.allclose(vis, ir, atol=1e-4)
        # the infrared path = the infrared stem, then the shared trunk and its non-local blocks
        fmap = demo.backbone.forward_shared(
            demo.backbone.infrared['stem'](x), after_block=demo.non_local
        )
        manual = demo.head.bottleneck(demo.neck(fmap))
        assert torch.allclose(ir, F.normalize(manual, dim=1), atol=1e-6)
        # mmengine's 'tensor' mode goes through the same path
        assert torch.allclose(demo(x, dict(modality=torch.ones(3, dtype=torch.long))), ir)


def test_pool_test_feature_is_the_pre_bn_feature():
    torch.manual_seed(0)
    bn = AGW(num_classes=4, backbone=DEMO).eval()
    pool = AGW(num_classes=4, test_feature='pool', backbone=DEMO).eval()
    pool.load_state_dict(bn.state_dict())
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        pre = bn.neck(bn.backbone(x, 0, after_block=bn.non_local))
        assert torch.allclose(pool.extract_feat(x, 0), F.normalize(pre, dim=1), atol=1e-6)
        assert not torch.allclose(bn.extract_feat(x, 0), pool.extract_feat(x, 0), atol=1e-4)


def test_base_variant_and_bad_arguments(batch):
    # the repo's --method base: no non-local blocks, average pooling, batch-hard triplet
    base = AGW(
        num_classes=4,
        non_local=None,
        neck=dict(type='GlobalAveragePooling', _delete_=True),
        losses=dict(tri=dict(_delete_=True, type='BatchHardTripletLoss', input='pool', margin=0.3)),
        backbone=DEMO,
    )
    assert base.non_local is None and isinstance(base.losses['tri'], BatchHardTripletLoss)
    inputs, samples = batch(num_ids=2, size=(64, 32), seed=4)
    out = base.train().loss(inputs, dict(samples, label=samples['label'].clamp(max=3)))
    assert torch.isfinite(out['loss_tri'])
    assert set(out) == {'loss_id', 'loss_tri', 'acc_id', 'acc_tri'}
    with pytest.raises(KeyError, match='MaxPool'):
        AGW(num_classes=4, backbone=DEMO, neck=dict(type='MaxPool', _delete_=True))
    for bad, match in (
        (dict(test_feature='fc'), 'test_feature'),
        (dict(non_local=dict(counts=(1, 2))), 'counts'),
        (dict(losses=dict(tri=dict(input='embedding'))), 'losses.tri.input'),
        (dict(num_classes=1), 'num_classes'),
    ):
        with pytest.raises(ValueError, match=match):
            AGW(**{'num_classes': 4, 'backbone': DEMO, **bad})
    with pytest.raises(TypeError, match='depht'):
        AGW(num_classes=4, backbone=dict(DEMO, depht=50))
