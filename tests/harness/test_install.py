"""A real wheel, installed (not editable) in a fresh virtual environment, works on its own.

To stay fast and offline the new environment gets no dependencies of its own: a ``.pth`` line
makes this environment's site-packages visible after its own (a ``.pth`` line adds a path but runs
no ``.pth`` file inside it, so this environment's editable install of the project cannot come
back), and the wheel is installed with ``--no-deps``. The test then checks that every project
module is imported from the new environment, never from this source tree.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECORDS = Path(__file__).parent / 'fixtures' / 'records' / 'runs'


def _source_copy(dst: Path) -> Path:
    """The tracked files of this checkout (what a clone holds): no build output lands here."""
    try:
        files = subprocess.run(
            ['git', 'ls-files', '-z'],
            cwd=ROOT,
            capture_output=True,
            check=True,
            text=True,
            timeout=60,
        ).stdout.split('\0')
    except (OSError, subprocess.CalledProcessError):
        pytest.skip('not a git checkout: cannot tell which files a clone would hold')
    for name in filter(None, files):
        src, out = ROOT / name, dst / name
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), out)
        elif src.is_file():
            shutil.copy2(src, out)
    return dst


def _setuptools_major() -> int:
    try:
        return int(metadata.version('setuptools').split('.')[0])
    except (metadata.PackageNotFoundError, ValueError):
        return 0


def _run(cmd: list, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f'{cmd} failed:\n{proc.stdout}\n{proc.stderr}'
    return proc


@pytest.fixture(scope='module')
def wheel_env(tmp_path_factory) -> tuple[Path, Path, dict]:
    tmp = tmp_path_factory.mktemp('install')
    env = {
        k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV')
    }
    src = _source_copy(tmp / 'clone')
    # Build with this environment's setuptools when it is new enough for pyproject.toml (fast,
    # offline); otherwise (a fresh venv's bundled setuptools) pip fetches the build requirements.
    isolation = [] if _setuptools_major() >= 77 else ['--use-pep517']
    no_isolation = ['--no-build-isolation'] if not isolation else []
    _run(
        [
            sys.executable,
            '-m',
            'pip',
            'wheel',
            '--no-deps',
            *no_isolation,
            *isolation,
            '-q',
            '-w',
            tmp / 'dist',
            src,
        ],
        tmp,
        env,
    )
    (wheel,) = (tmp / 'dist').glob('vireid_bench-*.whl')
    venv = tmp / 'venv'
    _run([sys.executable, '-m', 'venv', '--without-pip', venv], tmp, env)
    purelib = Path(
        subprocess.run(
            [
                venv / 'bin' / 'python',
                '-c',
                'import sysconfig; print(sysconfig.get_paths()["purelib"])',
            ],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout.strip()
    )
    ours = [
        p
        for p in {
            *site.getsitepackages(),
            sysconfig.get_paths()['purelib'],
            sysconfig.get_paths()['platlib'],
        }
        if Path(p).is_dir()
    ]
    (purelib / 'zz_ci_dependencies.pth').write_text('\n'.join(ours) + '\n')
    _run(
        [venv / 'bin' / 'python', '-m', 'pip', 'install', '--no-deps', '--no-index', '-q', wheel],
        tmp,
        env,
    )
    return wheel, venv, env


def test_wheel_holds_the_package_data(wheel_env):
    wheel, _, _ = wheel_env
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        'harness/tables/reported.csv',
        'harness/py.typed',
        'protocols/py.typed',
        'methods/py.typed',
        'methods/agw/configs/agw_sysu.py',
        'protocols/configs/sysu.py',
    ):
        assert needed in names, needed
    assert any(n.endswith('.dist-info/licenses/LICENSE') for n in names)
    meta = next(
        zipfile.ZipFile(wheel).read(n).decode() for n in names if n.endswith('.dist-info/METADATA')
    )
    assert 'License-Expression: Apache-2.0' in meta and 'Classifier: Typing :: Typed' in meta
    assert 'Provides-Extra: slurm' in meta and 'Project-URL: ' in meta
    assert not any(n.startswith(('tests/', 'results/')) for n in names)


def test_installed_wheel_runs_tables_with_the_reported_rows(wheel_env, tmp_path):
    _, venv, env = wheel_env
    python, vireid = venv / 'bin' / 'python', venv / 'bin' / 'vireid'
    where = _run(
        [
            python,
            '-c',
            'import harness, protocols, methods.agw, harness.tables.export as e; '
            'print(harness.__file__, protocols.__file__, methods.agw.__file__, '
            'e.default_reported())',
        ],
        tmp_path,
        env,
    ).stdout.split()
    assert len(where) == 4 and all(
        Path(w).resolve().is_relative_to(venv.resolve()) for w in where
    ), where
    version = _run([vireid, '--version'], tmp_path, env).stdout
    assert version.startswith('vireid 0.1.0') and str(venv.resolve()) in version
    methods = _run([vireid, 'methods'], tmp_path, env).stdout
    assert all(name in methods for name in ('agw', 'mpanet', 'mmn', 'two_stream_mhsa'))

    proc = _run(
        [vireid, 'tables', '--records', RECORDS, '--out', tmp_path / 'tables', '--no-plots'],
        tmp_path,
        env,
    )
    assert 'WARNING' not in proc.stderr
    comparison = (tmp_path / 'tables' / 'comparison.md').read_text()
    assert 'reported (TPAMI 2021)' in comparison and 'reported (CVPR 2021)' in comparison
    assert '47.50' in comparison and '70.58‡' in comparison  # AGW's README, MPANet as quoted
    # The shipped numbers sit in the papers' block, above the fixture's (real-data) runs.
    assert comparison.index('**Reported in the papers (real datasets)**') < comparison.index(
        '**This benchmark**'
    )
    assert (tmp_path / 'tables' / 'index.html').is_file()

    # Without the package data the tables still build, and say loudly what is missing.
    shipped = Path(where[3])
    kept = shipped.read_bytes()
    shipped.unlink()
    try:
        proc = _run(
            [vireid, 'tables', '--records', RECORDS, '--out', tmp_path / 'bare', '--no-plots'],
            tmp_path,
            env,
        )
    finally:
        shipped.write_bytes(kept)
    assert 'WARNING' in proc.stderr and 'reported numbers' in proc.stderr
    assert 'reported (' not in (tmp_path / 'bare' / 'comparison.md').read_text()
