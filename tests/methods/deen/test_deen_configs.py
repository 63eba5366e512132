"""The four DEEN configs load over their protocol without changing it and read like train.py's
defaults; the optimiser groups and per-epoch learning rates are train.py's; the sampler's epoch
length (ZYK100/LLCM@886e27c DEEN/train.py, utils.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from harness.data.samplers import CrossModalityIdentitySampler
from harness.engine.config import load_config, protocol_changes
from harness.models.data_preprocessor import IMAGENET_MEAN, IMAGENET_STD
from harness.registry import MODELS, PARAM_SCHEDULERS
from methods.deen import METHOD

ROOT = Path(__file__).parents[3]
CONFIGS = ROOT / 'methods' / 'deen' / 'configs'
NAMES = {
    'deen_sysu.py': ('sysu', 'full'),
    'deen_regdb.py': ('regdb', 'full'),
    'deen_demo_sysu.py': ('sysu', 'demo'),
    'deen_demo_regdb.py': ('regdb', 'demo'),
    'deen_llcm.py': ('llcm', 'full'),
    'deen_demo_llcm.py': ('llcm', 'demo'),
}


def test_method_spec_lists_the_configs_and_matches_the_reported_rows():
    assert METHOD.name == 'deen' and METHOD.converter == 'methods.deen.convert:convert'
    assert sorted(p.name for p in METHOD.config_files()) == sorted(NAMES)
    assert callable(METHOD.load_converter())
    with open(ROOT / 'harness' / 'tables' / 'reported.csv', newline='') as f:
        names = {row['method'] for row in csv.DictReader(f)}
    assert 'DEEN' in names and set(METHOD.aliases) <= names


@pytest.mark.parametrize('name', sorted(NAMES))
def test_config_keeps_the_protocol_and_its_shape(name):
    dataset, kind = NAMES[name]
    cfg = load_config(CONFIGS / name)
    assert (cfg.protocol['dataset'], cfg.entry['kind'], cfg.entry['method']) == (
        dataset,
        kind,
        'deen',
    )
    assert protocol_changes(cfg) == {}
    assert cfg.selection['rule'] == 'final'  # the reported number is the final epoch's
    sampler = cfg.sampler
    assert cfg.train_dataloader['batch_size'] == 2 * sampler['num_ids'] * sampler['num_instances']
    assert cfg.test['distance'] == 'inner_product'  # test.py ranks by -distmat7
    assert cfg.model['last_stage'] == (3 if dataset == 'regdb' else 4)
    pipeline = [t['type'] for t in cfg.train_pipeline]
    assert pipeline == [
        'Pad',
        'RandomGrayscale',
        'RandomCrop',
        'RandomHorizontalFlip',
        'RandomErasing',
    ]


@pytest.mark.parametrize(
    ('name', 'scale'), [('deen_sysu.py', (0.2, 0.8)), ('deen_regdb.py', (0.02, 0.4))]
)
def test_full_configs_are_train_py(name, scale):
    cfg = load_config(CONFIGS / name)
    assert tuple(cfg.input_size) == (384, 144) and cfg.resize_filter == 'lanczos'
    assert (cfg.sampler['num_ids'], cfg.sampler['num_instances']) == (6, 4)
    assert cfg.train_cfg['max_epochs'] == 151 and cfg.amp['enabled'] is False
    losses = cfg.model['losses']
    assert {k: (v['type'], v['input'], v['weight']) for k, v in losses.items()} == {
        'id': ('IdentityLoss', 'logits', 1.0),
        'tri': ('BatchHardTripletLoss', 'pool', 1.0),
        'cpm': ('CPMLoss', 'pool', 0.8),
        'ort': ('OrthogonalLoss', 'pool', 0.01),
    }
    assert losses['tri']['margin'] == 0.3 and losses['cpm']['margin'] == 0.2
    assert cfg.model['dee_dropout'] == 0.01 and tuple(cfg.model['test_weights']) == (1.0, 1.0)
    assert cfg.model['backbone']['pretrained'] is True and cfg.model['test_flip'] is True
    pad, gray, _, flip, erasing = cfg.train_pipeline
    assert pad['padding'] == 10 and pad['fill'] == 0 and gray['p'] == 0.5 and flip['p'] == 0.5
    assert erasing['p'] == 0.5 and tuple(erasing['scale']) == scale and erasing['attempts'] == 100
    assert erasing['ratio'][0] == 0.3 and erasing['ratio'][1] == pytest.approx(1 / 0.3)
    # RandomErasing(mean=[0.485, 0.456, 0.406]) writes those numbers into the normalised tensor.
    written = [
        (v - m * 255) / (s * 255) for v, m, s in zip(erasing['value'], IMAGENET_MEAN, IMAGENET_STD)
    ]
    assert written == pytest.approx([0.485, 0.456, 0.406], abs=0.5 / (0.224 * 255))


def official_lr(epoch: int, lr: float = 0.1) -> float:
    """train.py adjust_learning_rate (head groups; the first group gets 0.1 x this)."""
    if epoch < 10:
        return lr * (epoch + 1) / 10
    if epoch < 20:
        return lr
    if epoch < 80:
        return lr * 0.1
    return lr * 0.01


def test_spot_values_from_the_spec():
    epochs = (0, 9, 10, 19, 20, 79, 80, 150)
    assert [official_lr(e) for e in epochs] == pytest.approx(
        [0.01, 0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    )


@pytest.mark.parametrize('name', ['deen_sysu.py', 'deen_regdb.py'])
def test_per_epoch_lr_of_every_group_matches_train_py(tiny_deen, name):
    cfg = load_config(CONFIGS / name)
    model = tiny_deen(config=name[:-3])
    with DefaultScope.overwrite_default_scope('harness'):
        wrapper = build_optim_wrapper(model, dict(type='OptimWrapper', **cfg.optim_wrapper))
        schedulers = [
            PARAM_SCHEDULERS.build(dict(s, optimizer=wrapper)) for s in cfg.param_scheduler
        ]
    opt = wrapper.optimizer
    assert type(opt).__name__ == 'SGD'
    assert all(
        g['momentum'] == 0.9 and g['nesterov'] and g['weight_decay'] == 5e-4
        for g in opt.param_groups
    )
    names = {id(p): n for n, p in model.named_parameters()}
    group_of = {names[id(p)]: g for g in opt.param_groups for p in g['params']}
    # every trained parameter is optimised (the BNNeck bias is frozen at 0, as the official one)
    assert set(group_of) == {n for n, p in model.named_parameters() if p.requires_grad}
    slow = [g for n, g in group_of.items() if n.startswith(('backbone.', 'mfa.', 'dee.'))]
    fast = [g for n, g in group_of.items() if n.startswith('head.')]
    assert len(slow) + len(fast) == len(group_of)
    for epoch in range(cfg.train_cfg['max_epochs']):
        if epoch:
            for s in schedulers:
                s.step()
        assert all(g['lr'] == pytest.approx(official_lr(epoch), rel=1e-9) for g in fast), epoch
        assert all(g['lr'] == pytest.approx(0.1 * official_lr(epoch), rel=1e-9) for g in slow)


class _Counts:
    """A training set of the released sizes (labels and modalities only)."""

    def __init__(self, n_vis: int, n_ir: int, ids: int) -> None:
        self.labels = np.concatenate([np.arange(n_vis) % ids, np.arange(n_ir) % ids])
        self.modalities = np.concatenate([np.zeros(n_vis, int), np.ones(n_ir, int)])


@pytest.mark.parametrize(
    ('sizes', 'batches'), [((22_258, 11_909, 395), 928), ((2_060, 2_060, 206), 86)]
)
def test_an_epoch_has_the_official_number_of_batches(sizes, batches):
    cfg = load_config(CONFIGS / 'deen_sysu.py')
    args = {k: v for k, v in cfg.sampler.items() if k != 'type'}
    sampler = CrossModalityIdentitySampler(_Counts(*sizes), rank=0, world_size=1, **args)
    assert sampler.num_batches == batches and sampler.batch_size == 48


def test_demo_model_builds_and_runs_at_demo_size():
    for name in ('deen_demo_sysu.py', 'deen_demo_regdb.py'):
        cfg = load_config(CONFIGS / name)
        torch.manual_seed(0)
        with DefaultScope.overwrite_default_scope('harness'):
            model = MODELS.build(dict(cfg.model, num_classes=10)).eval()
        with torch.no_grad():
            feat = model.extract_feat(torch.randn(2, 3, *cfg.input_size), 1)
        assert feat.shape == (2, 6 * model.feat_dim) and torch.isfinite(feat).all()
