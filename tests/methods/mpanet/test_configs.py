"""The configs read like the official configs/SYSU.yml and RegDB.yml and build a working model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmengine.registry import DefaultScope

import methods.mpanet as mpanet
from harness.engine.config import check_protocol_unchanged, load_config
from harness.registry import MODELS

CONFIGS = Path(mpanet.__file__).parent / 'configs'


def test_method_spec_lists_every_config_and_the_converter():
    spec = mpanet.METHOD
    assert spec.name == 'mpanet' and spec.code.startswith('DoubtedSteam/MPANet@f57fd5c')
    assert {p.name for p in spec.config_files()} == {
        'mpanet_sysu.py',
        'mpanet_regdb.py',
        'mpanet_demo_sysu.py',
        'mpanet_demo_regdb.py',
        'mpanet_llcm.py',
        'mpanet_demo_llcm.py',
    }
    from methods.mpanet.convert import convert

    assert spec.load_converter() is convert


@pytest.mark.parametrize(
    'name, size, p, half, milestones, distance',
    [
        ('mpanet_sysu.py', (384, 128), 16, 4, [80, 120], 'cosine'),
        ('mpanet_regdb.py', (256, 128), 12, 5, [110], 'euclidean'),
    ],
)
def test_full_configs_follow_the_official_yaml(name, size, p, half, milestones, distance):
    cfg = load_config(CONFIGS / name)
    assert check_protocol_unchanged(cfg)
    assert tuple(cfg.input_size) == size
    assert cfg.sampler == dict(type='MPANetIdentitySampler', num_ids=p, num_instances=half)
    assert cfg.train_dataloader['batch_size'] == 2 * p * half
    opt = cfg.optim_wrapper['optimizer']
    assert (opt['type'], opt['lr'], opt['weight_decay']) == ('Adam', 3.5e-4, 5e-4)
    assert 'paramwise_cfg' not in cfg.optim_wrapper  # one group, decay on every parameter
    assert cfg.param_scheduler == [
        dict(type='MultiStepLR', by_epoch=True, begin=0, milestones=milestones, gamma=0.1)
    ]
    assert cfg.train_cfg['max_epochs'] == 140
    assert cfg.amp == dict(enabled=True, dtype='float16')
    assert cfg.test['distance'] == distance
    assert cfg.selection['rule'] == 'final'
    assert dict(type='MPANetEMARateHook') in cfg.custom_hooks
    m, losses = cfg.model, cfg.model.losses
    assert (
        m.num_patterns,
        losses.pattern.weight,
        losses.center_cluster.margin,
        losses.id_visible.weight,
        losses.id_infrared.weight,
        losses.kl.weight,
        m.ema_base_rate,
    ) == (6, 0.5, 0.7, 1.0, 1.0, 2.5, 0.2)
    assert m.backbone == dict(depth=50, last_stride=1, pretrained=True)
    text = (CONFIGS / name).read_text()
    assert (
        "# selection = dict(rule='best-test-rank1', epochs=[120, 125, 130, 135, 140])  # OPTIMISTIC"
    ) in text


@pytest.mark.parametrize('name', ['mpanet_demo_sysu.py', 'mpanet_demo_regdb.py'])
def test_demo_configs_build_the_same_architecture_smaller(name, batch):
    cfg = load_config(CONFIGS / name)
    assert cfg.entry['kind'] == 'demo' and check_protocol_unchanged(cfg)
    assert cfg.model.backbone['pretrained'] is False
    assert tuple(cfg.model.backbone['blocks']) == (1, 1, 1, 1)
    sampler = cfg.sampler
    assert cfg.train_dataloader['batch_size'] == 2 * sampler['num_ids'] * sampler['num_instances']
    with DefaultScope.overwrite_default_scope('harness'):
        model = MODELS.build(dict(cfg.model, num_classes=5))
    images, samples = batch(num_ids=3, k=2, size=tuple(cfg.input_size))
    losses = model.train().loss(images, samples)
    assert all(torch.isfinite(v) for v in losses.values())
    # layer4 of a bottleneck trunk: 256 channels at width 8
    width = 32 * cfg.model.backbone['base_channels']
    assert model.mam4.norm.num_features == width and model.mam3.norm.num_features == width // 2
    assert model.eval().extract_feat(images, 0).shape == (len(images), width * 7)
