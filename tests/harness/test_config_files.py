"""Config files are checked like ``--cfg-options``: a key the run would not use, at any level of a
method config, a plugin's config, a ``_base_`` file or a ``method_base`` it inherits, is refused
with the file and the closest known key before anything runs or is planned; an import that fails
inside a config is an error naming the file. Every shipped config passes the check."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from harness.cli import main
from harness.engine.config import PROTOCOL_CONFIG_DIR, load_config, read_config
from harness.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
AGW_DEMO = ROOT / 'methods' / 'agw' / 'configs' / 'agw_demo_sysu.py'
FIXTURES = ROOT / 'tests' / 'fixtures'
METHOD_CONFIGS = sorted(
    [*ROOT.glob('methods/*/configs/*.py'), *FIXTURES.glob('**/configs/*.py')],
    key=lambda p: p.relative_to(ROOT).as_posix(),
)
PROTOCOL_CONFIGS = sorted(PROTOCOL_CONFIG_DIR.glob('*.py'))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.fixture
def fixture_plugins(toy_plugin, composed_plugin):
    """The test plugins installed (their configs name their own model and loss types)."""
    return {**toy_plugin, **composed_plugin}


@pytest.mark.parametrize('config', METHOD_CONFIGS, ids=_rel)
def test_every_shipped_method_config_passes_the_key_check(config, fixture_plugins):
    cfg = load_config(config)
    assert cfg.config_file == str(config)


@pytest.mark.parametrize('config', PROTOCOL_CONFIGS, ids=_rel)
def test_every_protocol_layer_passes_the_key_check(config):
    # The layers define the keys; the components they configure still take only their arguments.
    from harness.engine.config import check_config_keys

    layer = read_config(config).to_dict()
    check_config_keys(config, layer, layer, layer)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


# file text (over AGW's demo) -> the key named and the hint given
TYPOS = [
    ('train_cfg = dict(max_epoch=1)', 'train_cfg.max_epoch', 'did you mean train_cfg.max_epochs?'),
    ('trian_cfg = dict(max_epochs=1)', 'trian_cfg', 'did you mean train_cfg?'),
    ('model = dict(neck=dict(pp=4.0))', 'model.neck.pp', 'did you mean model.neck.p?'),
    ('model = dict(test_featur="pool")', 'model.test_featur', 'did you mean model.test_feature?'),
    (
        'model = dict(losses=dict(id=dict(wieght=2.0)))',
        'model.losses.id.wieght',
        'did you mean model.losses.id.weight?',
    ),
    ('test = dict(batch_sise=8)', 'test.batch_sise', 'did you mean test.batch_size?'),
    ('protocol = dict(trails=3)', 'protocol.trails', 'did you mean protocol.trials?'),
    (
        'optim_wrapper = dict(paramwise_cfg=dict(bias_lr_mul=2.0))',
        'optim_wrapper.paramwise_cfg.bias_lr_mul',
        'did you mean optim_wrapper.paramwise_cfg.bias_lr_mult?',
    ),
    (
        'default_hooks = dict(logger=dict(intervall=5))',
        'default_hooks.logger.intervall',
        'did you mean default_hooks.logger.interval?',
    ),
]


@pytest.mark.parametrize('text, key, hint', TYPOS, ids=[t[1] for t in TYPOS])
def test_a_typo_in_a_method_config_is_refused_with_the_file_and_the_closest_key(
    tmp_path, text, key, hint
):
    config = _write(tmp_path / 'typo.py', f"_base_ = ['{AGW_DEMO}']\n{text}\n")
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert str(err.value).startswith(f'{config}: {key}: no such config key'), err.value
    assert hint in str(err.value)


def test_a_typo_in_a_base_file_names_that_file(tmp_path):
    base = _write(tmp_path / 'base.py', f"_base_ = ['{AGW_DEMO}']\ntrain_cfg = dict(max_epoch=1)\n")
    child = _write(tmp_path / 'child.py', "_base_ = ['./base.py']\ninput_size = (64, 32)\n")
    with pytest.raises(ConfigError, match='did you mean train_cfg.max_epochs') as err:
        load_config(child)
    assert str(err.value).startswith(f'{base}: train_cfg.max_epoch')


def test_a_typo_in_a_method_base_plugin_config_is_refused(tmp_path):
    # A plugin's config over AGW's demo recipe (method_base), as the composed test plugin does.
    config = _write(
        tmp_path / 'plugin_sysu.py',
        """
        method_base = 'agw/agw_demo_sysu'
        protocol_base = 'sysu'
        entry = dict(method='plug', kind='demo', label='Plug')
        model = dict(losses=dict(tri=dict(_delete_=True, type='WeightedRegularizedTriplet',
                                          input='pool', wieght=1.0)))
        """,
    )
    with pytest.raises(ConfigError, match='did you mean model.losses.tri.weight') as err:
        load_config(config)
    assert str(err.value).startswith(f'{config}: model.losses.tri.wieght')


def test_keys_the_engine_and_the_components_read_pass(tmp_path):
    config = _write(
        tmp_path / 'fine.py',
        f"""
        _base_ = ['{AGW_DEMO}']
        train_cfg = dict(max_epochs=3)
        test = dict(batch_size=16, num_workers=0, keep_features=True)
        selection = dict(rule='best-test-rank1', epochs=[2, 3])
        model = dict(neck=dict(p=4.0), losses=dict(id=dict(weight=0.5)))
        optim_wrapper = dict(paramwise_cfg=dict(bias_lr_mult=2.0), clip_grad=dict(max_norm=5))
        default_hooks = dict(logger=dict(interval=5))
        backends = dict(matmul_tf32=False)
        """,
    )
    cfg = load_config(config)
    assert cfg.model.neck.p == 4.0 and cfg.train_cfg.max_epochs == 3


@pytest.mark.parametrize(
    'text', ['from nowhere import x', 'import nowhere_at_all', 'from os import no_such_name']
)
def test_an_import_that_fails_in_a_config_is_an_error_naming_the_file(tmp_path, text):
    config = _write(tmp_path / 'imports.py', f"{text}\n_base_ = ['{AGW_DEMO}']\n")
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert str(err.value).startswith(f'{config} line 1: an import fails'), err.value


def test_vireid_train_refuses_a_config_typo_before_it_writes_anything(tmp_path, sysu_root, capsys):
    config = _write(
        tmp_path / 'typo.py', f"_base_ = ['{AGW_DEMO}']\ntrain_cfg = dict(max_epoch=1)\n"
    )
    work = tmp_path / 'run'
    code = main(['train', str(config), '--work-dir', str(work), '--data-root', str(sysu_root)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f'{config}: train_cfg.max_epoch: no such config key' in err
    assert 'did you mean train_cfg.max_epochs?' in err and 'Traceback' not in err
    assert not work.exists()


# A plugin installed in a temporary folder: a config laid over one of its own (method_base), whose
# base has the typo, so the refusal must name the base file.
PLUGIN_INIT = """
from pathlib import Path

from harness.plugins import MethodSpec

METHOD = MethodSpec(name='typo', title='Typo', configs=Path(__file__).parent / 'configs')
"""


def _typo_plugin(folder: Path, base_text: str) -> Path:
    """Writes the plugin; returns the base config (the one holding the typo)."""
    dist = folder / 'vireid_typo-0.1.dist-info'
    _write(dist / 'METADATA', 'Metadata-Version: 2.1\nName: vireid-typo\nVersion: 0.1\n')
    _write(dist / 'entry_points.txt', '[vireid.methods]\ntypo = vireid_typo:METHOD\n')
    _write(folder / 'vireid_typo' / '__init__.py', PLUGIN_INIT)
    base = _write(
        folder / 'vireid_typo' / 'configs' / 'typo_base_sysu.py',
        f"""
        method_base = 'agw/agw_demo_sysu'
        protocol_base = 'sysu'
        entry = dict(method='typo', kind='demo', label='Typo base')
        {base_text}
        """,
    )
    _write(
        folder / 'vireid_typo' / 'configs' / 'typo_sysu.py',
        """
        method_base = 'typo/typo_base_sysu'
        protocol_base = 'sysu'
        entry = dict(method='typo', kind='demo', label='Typo')
        input_size = (64, 32)
        """,
    )
    return base


@pytest.mark.parametrize(
    'base_text, key, hint',
    [
        ('train_cfg = dict(max_epoch=1)', 'train_cfg.max_epoch', 'train_cfg.max_epochs'),
        ('trian_cfg = dict(max_epochs=1)', 'trian_cfg', 'train_cfg'),
        ('model = dict(neck=dict(pp=4.0))', 'model.neck.pp', 'model.neck.p'),
    ],
    ids=['nested', 'top-level', 'in-the-model'],
)
def test_leaderboard_dry_run_refuses_a_typo_in_an_inherited_plugin_config(
    tmp_path, monkeypatch, capsys, base_text, key, hint
):
    from harness import plugins

    folder = tmp_path / 'plugin'
    base = _typo_plugin(folder, base_text)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv(
        'PYTHONPATH', os.pathsep.join(filter(None, [str(folder), os.environ.get('PYTHONPATH')]))
    )
    plugins.discover(refresh=True)
    try:
        out = tmp_path / 'lb'
        code = main(['leaderboard', '--methods', 'typo', '--demo', '--dry-run', '--out', str(out)])
    finally:
        monkeypatch.undo()
        sys.modules.pop('vireid_typo', None)  # (the next case writes another one)
        plugins.discover(refresh=True)
    err = capsys.readouterr().err
    assert code == 2, err
    assert f'{base}: {key}: no such config key' in err and f'did you mean {hint}?' in err
    assert not out.exists()  # nothing planned, nothing written
