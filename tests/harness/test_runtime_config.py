"""Strict configs with runtime freedom: runtime settings reach the mmengine Runner and keep a run
comparable; protocol fields stay refused; an unknown key or a wrong value is refused by name."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from harness.cli import build_parser
from harness.engine.config import (
    ConfigError,
    ProtocolChangeError,
    check_protocol_unchanged,
    config_hash,
    load_config,
    protocol_changes,
)
from harness.engine.run import build_runner, runner_config

ROOT = Path(__file__).resolve().parents[2]
AGW_DEMO = ROOT / 'methods' / 'agw' / 'configs' / 'agw_demo_sysu.py'
TOY_SYSU = ROOT / 'tests' / 'fixtures' / 'toy_plugin' / 'vireid_toy' / 'configs' / 'toy_sysu.py'


def _cli_options(*items: str) -> dict:
    """``--cfg-options ITEMS`` as ``vireid train`` parses them."""
    return build_parser().parse_args(['train', 'x.py', '--cfg-options', *items]).cfg_options


# option -> where it lands in the Runner config
RUNTIME = [
    ('log.interval=5', ('default_hooks', 'logger', 'interval'), 5),
    ('default_hooks.logger.interval=7', ('default_hooks', 'logger', 'interval'), 7),
    ('checkpoint.max_keep_ckpts=5', ('default_hooks', 'checkpoint', 'max_keep_ckpts'), 5),
    ('checkpoint.interval=3', ('default_hooks', 'checkpoint', 'interval'), 3),
    (
        'default_hooks.checkpoint.save_last=False',
        ('default_hooks', 'checkpoint', 'save_last'),
        False,
    ),
    ('randomness.deterministic=True', ('randomness', 'deterministic'), True),
    ('env_cfg.cudnn_benchmark=True', ('env_cfg', 'cudnn_benchmark'), True),
    ('log_processor.window_size=3', ('log_processor', 'window_size'), 3),
    (
        'visualizer.vis_backends=[LocalVisBackend,TensorboardVisBackend]',
        ('visualizer', 'vis_backends'),
        [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')],
    ),
]


@pytest.mark.parametrize('option, where, value', RUNTIME, ids=[r[0] for r in RUNTIME])
def test_runtime_settings_reach_the_runner_and_keep_the_run_comparable(option, where, value):
    base = load_config(AGW_DEMO)
    cfg = load_config(AGW_DEMO, _cli_options(option))
    assert protocol_changes(cfg) == {} and check_protocol_unchanged(cfg)
    assert config_hash(cfg) == config_hash(base)  # a runtime setting never changes the hash
    node = runner_config(cfg, '/tmp/w', num_classes=10)
    for key in where:
        node = node[key]
    assert node == value


# options -> fragment of the refusal
REFUSED = [
    ({'train_cfg.max_epoch': 1}, ConfigError, 'did you mean train_cfg.max_epochs?'),
    ({'nonexistent_key.foo': 3}, ConfigError, 'nonexistent_key.foo: no such config key'),
    (
        {'default_hooks.logger.intervall': 3},
        ConfigError,
        'did you mean default_hooks.logger.interval?',
    ),
    ({'model.margn': 0.3}, ConfigError, 'did you mean model.margin?'),  # AGW's own arguments
    ({'protocol.trails': 3}, ConfigError, 'did you mean protocol.trials?'),
    (
        {'train_cfg.max_epochs': 'abc'},
        ConfigError,
        "train_cfg.max_epochs='abc': expected an integer",
    ),
    ({'optim_wrapper.optimizer.lr': 'fast'}, ConfigError, "lr='fast': expected a number"),
    ({'input_size': 32}, ConfigError, 'input_size=32: expected a list like [64,32]'),
    ({'protocol.trials': 3}, ProtocolChangeError, 'protocol.trials: protocol 10 -> config 3'),
    ({'randomness.seed': 1}, ProtocolChangeError, 'randomness.seed: protocol 0 -> config 1'),
    ({'protocol.modes': ['indoor']}, ProtocolChangeError, 'protocol.modes'),
]


@pytest.mark.parametrize('options, error, says', REFUSED, ids=[str(r[0]) for r in REFUSED])
def test_unknown_keys_wrong_values_and_protocol_fields_are_refused(options, error, says):
    with pytest.raises(error) as err:
        check_protocol_unchanged(load_config(AGW_DEMO, options))
    assert says in str(err.value)


def test_keys_a_component_accepts_are_known():
    # Constructor arguments of registered types, sub-configs the model validates, engine options.
    cfg = load_config(
        AGW_DEMO,
        {
            'model.margin': 0.5,
            'model.backbone.depth': 18,
            'optim_wrapper.optimizer.dampening': 0.1,
            'test.num_workers': 2,
            'selection.epochs': [4, 5],
        },
    )
    assert cfg.model.margin == 0.5 and cfg.model.backbone.depth == 18


def test_the_protocol_bases_hold_protocol_fields_and_include_the_runtime_layer():
    from harness.engine.config import PROTOCOL_CONFIG_DIR, _assigned_names, runtime_keys

    paths, runtime_only = runtime_keys()
    assert set(runtime_only) == {
        'checkpoint',
        'default_hooks',
        'env_cfg',
        'log_processor',
        'visualizer',
    }
    assert 'randomness.deterministic' in paths and 'randomness.seed' not in paths
    for name in ('sysu', 'regdb'):
        text = (PROTOCOL_CONFIG_DIR / f'{name}.py').read_text()
        assert "_base_ = ['./_runtime.py']" in text
        assert not _assigned_names(PROTOCOL_CONFIG_DIR / f'{name}.py') & set(runtime_only)


def test_a_tensorboard_backend_from_the_command_line_reaches_the_runner(
    toy_plugin, sysu_root, tmp_path
):
    options = _cli_options('visualizer.vis_backends=[LocalVisBackend,TensorboardVisBackend]')
    cfg = load_config(TOY_SYSU, {**options, 'data_root': str(sysu_root)})
    runner = build_runner(cfg, tmp_path, train=False, resume=False, log_level='WARNING')
    assert runner.cfg.visualizer['vis_backends'] == [
        dict(type='LocalVisBackend'),
        dict(type='TensorboardVisBackend'),
    ]
    if importlib.util.find_spec('tensorboard') is None:  # pip install vireid-bench[tensorboard]
        pytest.skip(
            'tensorboard is not installed: the Runner config was checked, not the events file'
        )
    backends = runner.visualizer._vis_backends
    assert {type(b).__name__ for b in backends.values()} == {
        'LocalVisBackend',
        'TensorboardVisBackend',
    }
    runner.visualizer.add_scalars({'loss': 1.0}, step=1)
    runner.visualizer.close()
    assert list(Path(runner.log_dir).rglob('events.out.tfevents.*'))
