"""The official per-epoch learning rates, from the config's optimizer and scheduler objects."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

import harness.engine.schedulers  # noqa: F401  (registers WarmupMultiStepLR)
from harness.registry import PARAM_SCHEDULERS

CONFIGS = Path(__file__).parents[3] / 'methods' / 'mmn' / 'configs'


def official_lr(epoch: int, lr: float = 0.1) -> float:
    """train.py adjust_learning_rate (head groups); the backbone/MMG group gets 0.1 x this."""
    if epoch < 10:
        return lr * (epoch + 1) / 10
    if epoch < 20:
        return lr
    if epoch < 50:
        return lr * 0.1
    return lr * 0.01


@pytest.mark.parametrize('name', ['mmn_sysu.py', 'mmn_regdb.py'])
def test_per_epoch_lr_of_every_group_matches_train_py(tiny_mmn, name):
    cfg = Config.fromfile(str(CONFIGS / name))
    model = tiny_mmn()
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
    slow = [
        g for g in opt.param_groups if names[id(g['params'][0])].startswith(('backbone.', 'mmg.'))
    ]
    fast = [
        g
        for g in opt.param_groups
        if names[id(g['params'][0])].startswith(('bnnecks.', 'classifiers.'))
    ]
    assert len(slow) + len(fast) == len(opt.param_groups) and slow and fast
    assert any(names[id(g['params'][0])].startswith('mmg.') for g in slow)
    for epoch in range(cfg.train_cfg['max_epochs']):
        if epoch:
            for s in schedulers:
                s.step()
        for g in fast:
            assert g['lr'] == pytest.approx(official_lr(epoch), rel=1e-9), epoch
        for g in slow:
            assert g['lr'] == pytest.approx(0.1 * official_lr(epoch), rel=1e-9), epoch
    assert cfg.train_cfg['max_epochs'] == 81


def test_spot_values_from_the_spec():
    # The official adjust_learning_rate: head lr at epochs 0, 1, 9, 10, 19, 20, 49, 50, 80.
    assert [official_lr(e) for e in (0, 1, 9, 10, 19, 20, 49, 50, 80)] == pytest.approx(
        [0.01, 0.02, 0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    )
