"""AGW configs load over their protocols and carry the official train.py settings."""

from pathlib import Path

import pytest
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from harness.engine.config import load_config
from methods.agw import METHOD
from methods.agw.model import AGW

CONFIGS = Path(__file__).parents[3] / 'methods' / 'agw' / 'configs'


@pytest.fixture(scope='module')
def cfgs():
    return {p.stem: load_config(p) for p in METHOD.config_files()}


def test_method_spec_lists_the_configs_and_converter(cfgs):
    assert set(cfgs) == {
        f'agw_{kind}{ds}' for kind in ('', 'demo_') for ds in ('sysu', 'regdb', 'llcm')
    }
    assert callable(METHOD.load_converter())
    assert 'mangye16/Cross-Modal-Re-ID-baseline@' in METHOD.code


@pytest.mark.parametrize('name,dataset', [('agw_sysu', 'sysu'), ('agw_regdb', 'regdb')])
def test_full_configs_follow_train_py(cfgs, name, dataset):
    cfg = cfgs[name]
    assert cfg.protocol['dataset'] == dataset and cfg.entry['kind'] == 'full'
    model = cfg.model
    assert model['type'] == 'CrossModalityReID'
    assert model['backbone'] == dict(
        type='TwoStreamResNet', share_from=1, depth=50, last_stride=1, pretrained=True
    )
    assert model['non_local'] == dict(type='NonLocalStages', counts=(0, 2, 3, 0))
    assert model['neck'] == dict(type='GeneralizedMeanPooling', p=3.0)
    assert model['head'] == dict(type='BNNeckHead', bnneck_weight_std=0.01, classifier_std=0.001)
    assert model['losses'] == dict(
        id=dict(type='IdentityLoss', input='logits', weight=1.0),
        tri=dict(type='WeightedRegularizedTriplet', input='pool', weight=1.0),
    )
    assert model['test_feature'] == 'bn'
    assert tuple(cfg.input_size) == (288, 144)
    assert [t['type'] for t in cfg.train_pipeline] == ['Pad', 'RandomCrop', 'RandomHorizontalFlip']
    assert cfg.train_pipeline[0]['padding'] == 10 and cfg.train_pipeline[0]['fill'] == 0
    assert (cfg.sampler['num_ids'], cfg.sampler['num_instances']) == (8, 4)
    assert cfg.train_dataloader['batch_size'] == 2 * 8 * 4
    opt = cfg.optim_wrapper['optimizer']
    assert (opt['type'], opt['lr'], opt['momentum'], opt['weight_decay'], opt['nesterov']) == (
        'SGD',
        0.1,
        0.9,
        5e-4,
        True,
    )
    assert cfg.param_scheduler == [
        dict(
            type='WarmupMultiStepLR',
            warmup=10,
            milestones=[20, 50],
            gamma=0.1,
            by_epoch=True,
            begin=0,
        )
    ]
    assert cfg.train_cfg['max_epochs'] == 81 and cfg.test['distance'] == 'cosine'


def test_param_groups_put_trunk_and_non_local_at_a_tenth(cfgs):
    model = AGW(num_classes=5, backbone=dict(pretrained=False, blocks=(1, 1, 1, 1)))
    with DefaultScope.overwrite_default_scope('harness'):
        wrapper = build_optim_wrapper(
            model, dict(cfgs['agw_sysu'].optim_wrapper, type='OptimWrapper')
        )
    lr_of = {id(p): g['lr'] for g in wrapper.optimizer.param_groups for p in g['params']}
    for name, p in model.named_parameters():
        # BNNeck's frozen bias: mmengine leaves it out, as SGD ignores it upstream
        if not p.requires_grad:
            assert name == 'head.bottleneck.bias'
            continue
        expected = 0.1 if name.startswith('head.') else 0.01
        assert lr_of[id(p)] == pytest.approx(expected), name
        parts = ('backbone', 'non_local', 'head.bottleneck', 'head.classifier')
        assert name.startswith(parts), name


@pytest.mark.parametrize('name,dataset', [('agw_demo_sysu', 'sysu'), ('agw_demo_regdb', 'regdb')])
def test_demo_configs_scale_the_full_one(cfgs, name, dataset):
    cfg = cfgs[name]
    assert cfg.protocol['dataset'] == dataset and cfg.entry['kind'] == 'demo'
    assert cfg.model['type'] == 'CrossModalityReID'
    assert cfg.model['losses']['tri']['type'] == 'WeightedRegularizedTriplet'
    assert cfg.model['backbone']['blocks'] == (1, 1, 1, 1)
    assert cfg.model['backbone']['pretrained'] is False
    assert cfg.model['backbone']['base_channels'] == 8 and cfg.model['non_local']
    assert cfg.model['neck']['type'] == 'GeneralizedMeanPooling'
    sampler = cfg.sampler
    assert cfg.train_dataloader['batch_size'] == 2 * sampler['num_ids'] * sampler['num_instances']
    assert cfg.train_dataloader['num_workers'] == 0 and cfg.train_cfg['max_epochs'] <= 20
    assert max(cfg.input_size) <= 128
