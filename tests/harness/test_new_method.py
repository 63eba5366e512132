"""``vireid new-method`` writes a plugin package that installs, is listed, and trains.

The package is installed as a user installs it: ``pip install`` of its folder (a wheel built from
its ``pyproject.toml``, not a path on ``sys.path``) into a fresh virtual environment. To stay fast
and offline, that environment gets no dependencies of its own: a ``.pth`` line makes this
environment's site-packages and this source tree visible after its own (as in test_install.py),
and pip builds with this environment's setuptools (``--no-build-isolation``, ``--no-deps``).
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from harness.cli import main
from harness.engine.config import load_config, method_config
from harness.registry import MODELS
from harness.scaffold import overrides, py

ROOT = Path(__file__).resolve().parents[2]


def _run(cmd: list, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONHOME')}
    env.update(OMP_NUM_THREADS='1', VIRTUAL_ENV='')
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f'{cmd} failed:\n{proc.stdout}\n{proc.stderr}'
    return proc


def _venv_seeing_this_environment(where: Path) -> Path:
    """A venv whose own site-packages comes first, then this environment's and the source tree."""
    venv = where / 'venv'
    _run([sys.executable, '-m', 'venv', '--without-pip', venv], where)
    python = venv / 'bin' / 'python'
    purelib = Path(
        _run(
            [python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], where
        ).stdout.strip()
    )
    ours = {
        *site.getsitepackages(),
        sysconfig.get_paths()['purelib'],
        sysconfig.get_paths()['platlib'],
    }
    lines = [p for p in sorted(ours) if Path(p).is_dir()] + [str(ROOT)]
    (purelib / 'zz_this_environment.pth').write_text('\n'.join(lines) + '\n')
    return python


@pytest.fixture(scope='module')
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    package = tmp_path_factory.mktemp('scaffold') / 'vireid-scaffolded'
    assert main(['new-method', 'scaffolded', '--out', str(package)]) == 0
    return package


def test_the_package_holds_what_a_plugin_needs(scaffolded: Path) -> None:
    names = sorted(p.relative_to(scaffolded).as_posix() for p in scaffolded.rglob('*.*'))
    configs = [
        f'vireid_scaffolded/configs/scaffolded_{kind}{ds}.py'
        for kind in ('', 'demo_')
        for ds in ('sysu', 'regdb', 'llcm')
    ]
    assert sorted(names) == sorted(
        [
            'pyproject.toml',
            'README.md',
            'tests/test_learning.py',
            'vireid_scaffolded/__init__.py',
            'vireid_scaffolded/losses.py',
            *configs,
        ]
    )
    toml = (scaffolded / 'pyproject.toml').read_text()
    assert (
        '[project.entry-points."vireid.methods"]\nscaffolded = "vireid_scaffolded:METHOD"' in toml
    )
    init = (scaffolded / 'vireid_scaffolded' / '__init__.py').read_text()
    for field in (
        'name=',
        'title=',
        'configs=',
        'paper=',
        'code=',
        'aliases=',
        'converter=',
        'released=',
    ):
        assert field in init, field
    readme = (scaffolded / 'README.md').read_text()
    for section in (
        '## Paper and official code',
        '## Deviations from the official code',
        '## Reported numbers',
        '## Demo figures',
    ):
        assert section in readme, section


def test_every_generated_config_passes_the_key_check(scaffolded: Path) -> None:
    # The generated test module (a plain pytest file) compiles; the configs load through the
    # same checks as a shipped config (every key known, protocol untouched).
    compile((scaffolded / 'tests' / 'test_learning.py').read_text(), 'test_learning.py', 'exec')
    agw = {
        ds: load_config(ROOT / f'methods/agw/configs/agw_demo_{ds}.py') for ds in ('sysu', 'regdb')
    }
    for path in sorted((scaffolded / 'vireid_scaffolded' / 'configs').glob('*.py')):
        cfg = load_config(path)
        kind = 'demo' if '_demo_' in path.name else 'full'
        assert cfg.entry == dict(
            method='scaffolded',
            kind=kind,
            label='Scaffolded' + (' (demo)' if kind == 'demo' else ''),
        )
        assert cfg.model['type'] == 'CrossModalityReID'
        assert cfg.model['losses']['scaffolded']['type'] == 'ScaffoldedLoss'
        assert 'tri' not in cfg.model['losses']
        if kind == 'demo' and cfg.protocol['dataset'] in agw:
            # AGW's demo recipe, but for the loss and the entry
            base = agw[cfg.protocol['dataset']]
            for key in ('optim_wrapper', 'param_scheduler', 'train_cfg', 'sampler', 'input_size'):
                assert cfg[key] == base[key], (path.name, key)
            assert {k: v for k, v in cfg.model.items() if k != 'losses'} == {
                k: v for k, v in base.model.items() if k != 'losses'
            }


@pytest.mark.slow
def test_the_package_installs_is_listed_and_trains_its_demo(
    scaffolded: Path, regdb_root: Path, tmp_path: Path
) -> None:
    python = _venv_seeing_this_environment(tmp_path)
    # pip builds in the source folder (build/, *.egg-info): install a copy, so that the shared
    # scaffold stays as new-method wrote it for the other tests, whatever their order.
    source = Path(shutil.copytree(scaffolded, tmp_path / 'source'))
    _run(
        [
            python,
            '-m',
            'pip',
            'install',
            '-q',
            '--no-deps',
            '--no-build-isolation',
            '--no-index',
            source,
        ],
        tmp_path,
    )
    listed = _run([python, '-m', 'harness.cli', 'methods'], tmp_path).stdout
    row = next(line for line in listed.splitlines() if line.startswith('scaffolded '))
    assert 'vireid-scaffolded 0.1.0' in row, listed
    where = _run(
        [python, '-c', 'import vireid_scaffolded; print(vireid_scaffolded.__file__)'], tmp_path
    ).stdout.strip()
    assert Path(where).resolve().is_relative_to((tmp_path / 'venv').resolve()), where

    run = tmp_path / 'run'
    _run(
        [
            python,
            '-m',
            'harness.cli',
            'train',
            'scaffolded_demo_regdb',
            '--data-root',
            regdb_root,
            '--work-dir',
            run,
            '--cfg-options',
            'train_cfg.max_epochs=1',
        ],
        tmp_path,
    )
    record = json.loads((run / 'record.json').read_text())
    assert record['status'] == 'done' and record['method'] == 'scaffolded'
    assert record['plugin'] == 'vireid-scaffolded 0.1.0'
    assert set(record['results']) == {'v2t', 't2v'}


def test_from_another_method_inherits_its_configs(tmp_path: Path) -> None:
    out = tmp_path / 'pkg'
    assert main(['new-method', 'mmn_plus', '--from', 'mmn', '--out', str(out)]) == 0
    names = {p.stem for p in (out / 'vireid_mmn_plus' / 'configs').glob('*.py')}
    mmn = {p.stem for p in (ROOT / 'methods' / 'mmn' / 'configs').glob('*.py')}
    # one full and one demo config per dataset MMN has configs for, and no other
    assert names == {s.replace('mmn_', 'mmn_plus_', 1) for s in mmn}
    sys.path.insert(0, str(out))
    try:
        import vireid_mmn_plus.losses  # noqa: F401  (registers MmnPlusLoss)

        cfg = method_config(out / 'vireid_mmn_plus' / 'configs' / 'mmn_plus_demo_sysu.py')
        base = method_config(ROOT / 'methods/mmn/configs/mmn_demo_sysu.py')
        assert cfg.entry == dict(method='mmn_plus', kind='demo', label='MmnPlus (demo)')
        assert cfg.model['type'] == base.model['type'] and cfg.train_cfg == base.train_cfg
        term = cfg.model['losses']['mmn_plus']
        # on the input, parts and modality pairs of MMN's triplet
        tri = base.model['losses']['tri']
        assert (term['input'], term['parts'], term['modalities']) == (
            tri['input'],
            tri['parts'],
            tri['modalities'],
        )
        model = MODELS.build(dict(cfg.model, num_classes=5))
        assert 'mmn_plus' in model.losses
    finally:
        sys.path.remove(str(out))
        MODELS.module_dict.pop('MmnPlusLoss', None)
        for name in [m for m in sys.modules if m.startswith('vireid_mmn_plus')]:
            del sys.modules[name]


def test_bad_names_and_outputs_are_refused(tmp_path: Path, capsys) -> None:
    taken = tmp_path / 'taken'
    taken.mkdir()
    (taken / 'keep.txt').write_text('mine')
    cases = [
        (['new-method', 'agw', '--out', str(tmp_path / 'a')], 'installed already'),
        (['new-method', 'My-Method', '--out', str(tmp_path / 'b')], 'lower-case letters'),
        (
            ['new-method', 'fresh', '--from', 'nomethod', '--out', str(tmp_path / 'c')],
            'no such method',
        ),
        (['new-method', 'fresh', '--out', str(taken)], 'not an empty folder'),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        assert message in capsys.readouterr().err
    assert [p.name for p in taken.iterdir()] == ['keep.txt']
    assert not any((tmp_path / n).exists() for n in 'abc')


def test_config_values_are_written_as_python_that_reads_back() -> None:
    value = dict(
        type='X',
        custom_keys={'backbone.visible': dict(lr_mult=0.1)},
        sizes=(1,),
        steps=[20, 50],
        long=[
            dict(type='WarmupMultiStepLR', warmup=10, milestones=[20, 50], gamma=0.1, by_epoch=True)
        ],
    )
    text = py(value)
    assert eval(text) == value  # noqa: S307  (our own output)
    assert all(len(line) <= 100 for line in text.splitlines())
    assert overrides(dict(a=dict(b=1, c=2), d=1), dict(a=dict(b=1), d=2, e=3)) == dict(
        a=dict(_delete_=True, b=1), d=2, e=3
    )
    assert overrides(dict(a=dict(b=1, c=2)), dict(a=dict(b=1, c=3))) == dict(a=dict(c=3))
