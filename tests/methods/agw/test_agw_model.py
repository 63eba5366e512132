"""AGW model: architecture facts from the official code, losses wiring, per-modality stems."""
import pytest
import torch
import torch.nn.functional as F
from torchvision.models import resnet50

from harness.models.losses import WeightedRegularizedTriplet
from methods.agw.model import AGW, non_local_positions

DEMO = dict(pretrained=False, blocks=(1, 1, 1, 1))


def _conv(k, cin, cout):
    return k * k * cin * cout


def _bottleneck(cin, planes, downsample):
    n = _conv(1, cin, planes) + _conv(3, planes, planes) + _conv(1, planes, 4 * planes) + 2 * (planes + planes + 4 * planes)
    return n + (_conv(1, cin, 4 * planes) + 2 * 4 * planes if downsample else 0)


def _resnet50_counts():
    stem = _conv(7, 3, 64) + 2 * 64
    layers, cin = 0, 64
    for planes, blocks in ((64, 3), (128, 4), (256, 6), (512, 3)):
        layers += _bottleneck(cin, planes, True) + sum(_bottleneck(4 * planes, planes, False) for _ in range(blocks - 1))
        cin = 4 * planes
    return stem, layers


def _non_local(c):  # g, theta, phi: C -> 1 conv with bias; W: 1 -> C conv with bias + BN(C)
    return 3 * (c + 1) + (c + c) + 2 * c


def _batch(p=4, k=2, size=(64, 32), seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(p).repeat_interleave(k)
    return torch.randn(2 * p * k, 3, *size, generator=g), dict(
        label=torch.cat([labels, labels]), modality=torch.tensor([0] * p * k + [1] * p * k),
        cam=torch.zeros(2 * p * k, dtype=torch.long), index=torch.arange(2 * p * k))


@pytest.fixture(scope='module')
def demo():
    torch.manual_seed(0)
    return AGW(num_classes=6, backbone=DEMO)


def test_full_model_parameter_count():
    stem, layers = _resnet50_counts()
    tv = resnet50()
    assert stem + layers == sum(p.numel() for n, p in tv.named_parameters() if not n.startswith('fc.'))
    expected = (2 * stem + layers                       # two modality stems + shared layer1-4
                + 2 * _non_local(512) + 3 * _non_local(1024)
                + 2 * 2048                              # BNNeck (its frozen bias included)
                + 2048 * 395)                           # bias-free classifier, SYSU train+val ids
    model = AGW(num_classes=395, backbone=dict(pretrained=False))
    assert sum(p.numel() for p in model.parameters()) == expected
    assert model.feat_dim == 2048


def test_non_local_positions_follow_the_official_indexing():
    # AGW: layers [3, 4, 6, 3], non_layers [0, 2, 3, 0]
    assert [non_local_positions(n, k) for n, k in zip((3, 4, 6, 3), (0, 2, 3, 0))] == [[], [2, 3], [3, 4, 5], []]
    assert non_local_positions(1, 3) == [0] and non_local_positions(2, 3) == [0, 1]
    assert AGW(4, backbone=dict(pretrained=False)).non_local_after == {'layer2': [2, 3], 'layer3': [3, 4, 5]}
    assert AGW(4, non_local=False, backbone=DEMO).non_local_after == {}


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
    assert calls == ['layer1.0', 'layer2.0', 'layer2.1', 'NL-layer2.0', 'layer2.2', 'NL-layer2.1',
                     'layer3.0', 'layer3.1', 'NL-layer3.0', 'layer3.2', 'NL-layer3.1', 'layer3.3',
                     'NL-layer3.2', 'layer4.0']


def test_head_initialisation(demo):
    assert demo.classifier.bias is None
    assert demo.classifier.weight.std().item() == pytest.approx(0.001, rel=0.2)
    assert not demo.bottleneck.bias.requires_grad
    assert demo.bottleneck.weight.mean().item() == pytest.approx(1.0, abs=0.01)


def test_loss_wiring_id_on_bn_logits_and_wrt_on_pre_bn_feature(demo):
    inputs, samples = _batch()
    captured = {}
    handle = demo.bottleneck.register_forward_hook(lambda m, i, o: captured.update(pre=i[0], post=o))
    demo.train()
    out = demo.loss(inputs, samples)
    handle.remove()
    assert set(out) == {'loss_id', 'loss_tri', 'acc_id', 'acc_tri'}
    assert captured['pre'].shape == (16, 2048)
    labels = samples['label']  # this batch is already [visible | infrared]
    ref_tri, _ = WeightedRegularizedTriplet()(captured['pre'], labels)
    ref_id = F.cross_entropy(demo.classifier(captured['post']), labels)
    assert torch.allclose(out['loss_tri'], ref_tri) and torch.allclose(out['loss_id'], ref_id)


def test_backward_reaches_both_stems_non_local_and_head_but_not_bnneck_bias():
    torch.manual_seed(1)
    model = AGW(num_classes=6, backbone=DEMO).train()
    # a fresh non-local block outputs x (zero BN): give it weight so its inner convs get gradients
    for blocks in model.non_local.values():
        for block in blocks:
            torch.nn.init.constant_(block.W[1].weight, 0.1)
    inputs, samples = _batch(seed=1)
    out = model.loss(inputs, samples)
    (out['loss_id'] + out['loss_tri']).backward()
    named = dict(model.named_parameters())
    for key in ('backbone.visible.stem.0.weight', 'backbone.infrared.stem.0.weight',
                'backbone.shared.layer4.0.conv3.weight', 'non_local.layer2.0.theta.weight',
                'non_local.layer3.0.W.1.weight', 'bottleneck.weight', 'classifier.weight'):
        assert named[key].grad is not None and named[key].grad.abs().sum() > 0, key
    assert named['bottleneck.bias'].grad is None


def test_loss_derives_modalities_from_the_batch_not_its_layout(demo):
    inputs, samples = _batch(seed=2)
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
    demo.eval()
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        vis, ir = demo.extract_feat(x, 0), demo.extract_feat(x, 1)
        assert vis.shape == (3, 2048)
        assert torch.allclose(vis.norm(dim=1), torch.ones(3)) and torch.allclose(ir.norm(dim=1), torch.ones(3))
        assert not torch.allclose(vis, ir, atol=1e-4)
        # the infrared path = the infrared stem followed by the shared trunk
        manual = demo.bottleneck(demo._pool(demo._shared(demo.backbone.infrared['stem'](x))))
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
        pre = bn._pool(bn._shared(bn.backbone.forward_stream(x, 0)))
        assert torch.allclose(pool.extract_feat(x, 0), F.normalize(pre, dim=1), atol=1e-6)
        assert not torch.allclose(bn.extract_feat(x, 0), pool.extract_feat(x, 0), atol=1e-4)


def test_base_variant_and_bad_arguments():
    base = AGW(num_classes=4, non_local=False, pool='avg', triplet='batch_hard', backbone=DEMO)
    assert len(base.non_local) == 0
    inputs, samples = _batch(p=2, seed=4)
    out = base.train().loss(inputs, dict(samples, label=samples['label'].clamp(max=3)))
    assert torch.isfinite(out['loss_tri'])
    for bad in (dict(pool='max'), dict(triplet='x'), dict(test_feature='fc'), dict(non_local_layers=(1, 2)),
                dict(backbone=dict(depht=50))):
        with pytest.raises(ValueError):
            AGW(num_classes=4, **{'backbone': DEMO, **bad})
