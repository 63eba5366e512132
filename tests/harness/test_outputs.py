"""No command writes over one of its inputs: the guard of ``harness.outputs`` and every command
that writes (refused with exit code 2, one line naming both paths and the fix, nothing written),
and the numeric options, each checked when it is parsed."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.outputs import OutputOverInputError, check_output, how_same, is_inside
from protocols.evaluation import test_records

ROOT = Path(__file__).resolve().parents[2]
AGW_DEMO = ROOT / 'methods' / 'agw' / 'configs' / 'agw_demo_sysu.py'
RECORDS = Path(__file__).resolve().parent / 'fixtures' / 'records' / 'runs'


def _digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (links not followed) with a hash of its bytes."""
    out = {}
    for p in sorted(folder.rglob('*')):
        if p.is_symlink():
            out[str(p)] = 'link -> ' + os.readlink(p)
        elif p.is_file():
            out[str(p)] = hashlib.sha1(p.read_bytes()).hexdigest()
    return out


@dataclass
class Files:
    tmp: Path
    sysu: Path  # the session's synthetic SYSU-MM01 (read-only: never written, as tested here)
    config: Path  # a copy of the AGW demo config
    ckpt: Path  # an AGW demo checkpoint (the guard refuses before anything reads it)
    features: Path  # a features file of the synthetic SYSU-MM01 test images


@pytest.fixture(scope='module')
def agw_checkpoint(tmp_path_factory: pytest.TempPathFactory, sysu_root: Path) -> Path:
    """A real AGW demo checkpoint for the synthetic SYSU-MM01: the commands would run to the end
    and write, were they not refused."""
    import torch

    from harness.api import load_model
    from harness.checkpoints import describe_model
    from harness.data.datasets import train_set
    from harness.engine.config import load_config

    classes = train_set('sysu', str(sysu_root), load_config(AGW_DEMO).protocol).num_classes
    model = load_model(AGW_DEMO, num_classes=classes)
    path = tmp_path_factory.mktemp('ckpt') / 'agw_demo.pth'
    meta = describe_model('agw', classes, AGW_DEMO.name)
    torch.save({'state_dict': model.state_dict(), 'meta': meta}, path)
    return path


@pytest.fixture
def files(tmp_path: Path, sysu_root: Path, agw_checkpoint: Path) -> Files:
    shutil.copy(AGW_DEMO.with_name('agw_sysu.py'), tmp_path)  # its method_base
    config = Path(shutil.copy(AGW_DEMO, tmp_path))
    ckpt = Path(shutil.copy(agw_checkpoint, tmp_path / 'epoch_1.pth'))
    records = test_records('sysu', sysu_root)
    features = tmp_path / 'feats.npz'
    np.savez(
        features,
        paths=np.array([r.path for r in records]),
        features=np.random.default_rng(0).normal(size=(len(records), 8)).astype(np.float32),
    )
    return Files(tmp_path, sysu_root, config, ckpt, features)


def _link(kind: str, target: Path, at: Path) -> Path:
    """``at`` made the same file as ``target``: a symbolic link, a hard link, or a path through
    ``..``."""
    if kind == 'symlink':
        at.symlink_to(target)
    elif kind == 'hardlink':
        os.link(target, at)
    else:  # '..'
        (target.parent / 'sub').mkdir(exist_ok=True)
        return target.parent / 'sub' / '..' / target.name
    return at


@dataclass
class Case:
    id: str
    argv: Callable[[Files], list]
    says: Callable[[Files], tuple[str, ...]]


CASES = [
    Case(
        'extract --out onto its checkpoint',
        lambda f: ['extract', f.config, f.ckpt, '--out', f.ckpt, '--data-root', f.sysu],
        lambda f: (f'--out {f.ckpt} is the checkpoint itself', 'choose another --out'),
    ),
    Case(
        'extract --out onto its config',
        lambda f: ['extract', f.config, f.ckpt, '--out', f.config, '--data-root', f.sysu],
        lambda f: (f'--out {f.config} is the config itself',),
    ),
    Case(
        'extract --out inside the dataset',
        lambda f: ['extract', f.config, f.ckpt, '--out', f.sysu / 'f.npz', '--data-root', f.sysu],
        lambda f: (f'is inside the dataset root {f.sysu}',),
    ),
    Case(
        'score --json onto its features',
        lambda f: [
            'score',
            f.features,
            '--dataset',
            'sysu',
            '--root',
            f.sysu,
            '--json',
            f.features,
        ],
        lambda f: (f'--json {f.features} is the features file itself', 'nothing was written'),
    ),
    Case(
        'score --json inside the dataset',
        lambda f: [
            *('score', f.features, '--dataset', 'sysu', '--root', f.sysu),
            *('--json', f.sysu / 'cam1' / 'r.json'),
        ],
        lambda f: (f'is inside the dataset root {f.sysu}',),
    ),
    Case(
        'test --json onto its checkpoint',
        lambda f: ['test', f.config, f.ckpt, '--data-root', f.sysu, '--json', f.ckpt],
        lambda f: (f'--json {f.ckpt} is the checkpoint itself',),
    ),
    Case(
        'test --json onto its config',
        lambda f: ['test', f.config, f.ckpt, '--data-root', f.sysu, '--json', f.config],
        lambda f: (f'--json {f.config} is the config itself',),
    ),
    Case(
        'train --work-dir holding its config as config.py',
        lambda f: [
            *('train', Path(shutil.copy(f.config, f.tmp / 'config.py'))),
            *('--work-dir', f.tmp, '--data-root', f.sysu),
        ],
        lambda f: (
            f'--work-dir {f.tmp} would write {f.tmp / "config.py"}, which is the config itself',
            'cp ',
        ),
    ),
    Case(
        'train --work-dir whose name is not UTF-8 (found before the first epoch, not after it)',
        lambda f: [
            *('train', f.config, '--data-root', f.sysu),
            *('--work-dir', os.fsdecode(os.fsencode(f.tmp) + b'/run-\xff')),
        ],
        lambda f: (f'--work-dir {f.tmp}/run-\\xff: its name is not UTF-8', 'last_checkpoint'),
    ),
    Case(
        'train --work-dir inside the dataset',
        lambda f: ['train', f.config, '--work-dir', f.sysu / 'run', '--data-root', f.sysu],
        lambda f: (f'--work-dir {f.sysu / "run"} is inside the dataset root {f.sysu}',),
    ),
    Case(
        'tables --out holding the reported CSV under a name the tables write',
        lambda f: [
            *('tables', '--records', RECORDS, '--out', f.tmp, '--no-plots'),
            *(
                '--reported',
                Path(shutil.copy(ROOT / 'results' / 'reported.csv', f.tmp / 'cells.csv')),
            ),
        ],
        lambda f: (
            f'would write {f.tmp / "cells.csv"}, which is the reported results file itself',
        ),
    ),
    Case(
        'data synth --out inside a dataset',
        lambda f: [
            'data',
            'synth',
            '--dataset',
            'regdb',
            '--ids',
            '4',
            '--out',
            f.sysu / 'cam1' / '9',
        ],
        lambda f: (f'is inside the sysu dataset {f.sysu}', 'outside it'),
    ),
    Case(
        'leaderboard --out inside a dataset it reads',
        lambda f: [
            *('leaderboard', '--methods', 'agw', '--datasets', 'sysu', '--dry-run'),
            *('--data-root-sysu', f.sysu, '--out', f.sysu / 'lb'),
        ],
        lambda f: (f'is inside the sysu dataset root {f.sysu}',),
    ),
    Case(
        'convert DST a hard link to SRC',
        lambda f: ['convert', 'agw', f.ckpt, _link('hardlink', f.ckpt, f.tmp / 'dst.pth')],
        lambda f: (f'is the source checkpoint {f.ckpt} (the same file through a hard link)',),
    ),
]


@pytest.mark.parametrize('case', CASES, ids=[c.id for c in CASES])
def test_a_command_never_writes_over_its_input(case: Case, files: Files, capsys):
    data_before = _digest(files.sysu)
    argv = [str(a) for a in case.argv(files)]
    before = _digest(files.tmp)  # after the case made its links and copies
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'error: ' in err, err
    for fragment in case.says(files):
        assert fragment in err, f'{fragment!r} not in {err!r}'
    assert _digest(files.tmp) == before and _digest(files.sysu) == data_before


@pytest.mark.parametrize('kind', ['symlink', 'hardlink', '..'])
def test_extract_and_score_see_through_links(kind, files: Files, capsys):
    out = _link(kind, files.ckpt, files.tmp / 'out.npz')
    before = files.ckpt.read_bytes()
    assert main(['extract', str(files.config), str(files.ckpt), '--out', str(out)]) == 2
    err = capsys.readouterr().err
    assert f'--out {out} is the checkpoint {files.ckpt}' in err
    assert ('the same file through' in err) == (kind != '..')  # '..' is plain path arithmetic
    assert files.ckpt.read_bytes() == before
    feats = files.features.read_bytes()
    json_out = _link(kind, files.features, files.tmp / 'out.json')
    argv = ['score', str(files.features), '--dataset', 'sysu', '--root', str(files.sysu)]
    assert main([*argv, '--json', str(json_out)]) == 2
    assert f'is the features file {files.features}' in capsys.readouterr().err
    assert files.features.read_bytes() == feats


def test_writing_elsewhere_is_not_refused(files: Files, capsys):
    argv = ['score', str(files.features), '--dataset', 'sysu', '--root', str(files.sysu)]
    assert main([*argv, '--json', str(files.tmp / 'r.json')]) == 0
    assert json.loads((files.tmp / 'r.json').read_text())['setting'] == 'all-single'
    # the tables beside their records (the default) and into a folder holding other files
    out = files.tmp / 'tables'
    assert main(['tables', '--records', str(RECORDS), '--out', str(out), '--no-plots']) == 0
    assert (out / 'cells.csv').is_file()


def test_the_guard_itself(tmp_path: Path):
    a = tmp_path / 'a.bin'
    a.write_bytes(b'x')
    assert how_same(a, tmp_path / 'b.bin') is None  # b does not exist
    assert how_same(a, tmp_path / '.' / 'a.bin') == ''
    (tmp_path / 'l').symlink_to(a)
    assert 'symbolic link' in how_same(tmp_path / 'l', a)
    os.link(a, tmp_path / 'h')
    assert 'hard link' in how_same(tmp_path / 'h', a)
    folder = tmp_path / 'data'
    (folder / 'x').mkdir(parents=True)
    (tmp_path / 'alias').symlink_to(folder)
    assert is_inside(tmp_path / 'alias' / 'x' / 'new.npz', folder)
    assert is_inside(folder, folder) and not is_inside(tmp_path / 'datax', folder)
    with pytest.raises(OutputOverInputError, match='is a folder; give the path of a file'):
        check_output('--out', folder, {'checkpoint': a})
    with pytest.raises(OutputOverInputError, match='is a file, not a folder'):
        check_output('--out', a, writes=('*.png',))
    # a folder output: refused only where a file it writes is an input
    check_output('--out', tmp_path, {'checkpoint': a}, writes=('*.png',))
    with pytest.raises(
        OutputOverInputError, match=r'would write .*a\.bin, which is the checkpoint'
    ):
        check_output('--out', tmp_path, {'checkpoint': a}, writes=('*.bin',))
    with pytest.raises(OutputOverInputError, match='through a hard link'):
        check_output('--out', tmp_path, {'checkpoint': a}, writes=('h',))
    # names that are not UTF-8 are shown, not a UnicodeEncodeError
    odd = Path(os.fsdecode(bytes(tmp_path) + b'/\xff.npz'))
    odd.write_bytes(b'y')
    with pytest.raises(OutputOverInputError, match=r'\\xff\.npz is the features itself'):
        check_output('--json', odd, {'features': odd})


# --- numbers ------------------------------------------------------------------------------------

NUMBERS = [
    (
        ['extract', 'c.py', 'ck', '--out', 'o.npz', '--batch-size', '0'],
        '--batch-size: must be at least 1, got 0',
    ),
    (
        ['extract', 'c.py', 'ck', '--out', 'o.npz', '--num-workers', '-1'],
        '--num-workers: must be at least 0',
    ),
    (
        ['extract', 'c.py', 'ck', '--out', 'o.npz', '--split', '11'],
        '--split: must be in 1..10, got 11',
    ),
    (
        ['score', 'f.npz', '--dataset', 'regdb', '--root', '.', '--trial', '0'],
        '--trial: must be in 1..10',
    ),
    (
        ['data', 'check', '--dataset', 'sysu', '--root', '.', '--workers', '0'],
        '--workers: must be at least 1',
    ),
    (
        ['data', 'synth', '--dataset', 'sysu', '--out', 'x', '--gap', 'nan'],
        '--gap: must be a finite number',
    ),
    (
        ['data', 'synth', '--dataset', 'sysu', '--out', 'x', '--gap', '1.5'],
        '--gap: must be in [0, 1]',
    ),
    (
        ['data', 'synth', '--dataset', 'llcm', '--out', 'x', '--low-light', '-1'],
        '--low-light: must be in',
    ),
    (
        ['data', 'synth', '--dataset', 'sysu', '--out', 'x', '--size', 'full', '--scale', '0'],
        '--scale: must be in (0, 1]',
    ),
    (
        ['data', 'synth', '--dataset', 'sysu', '--out', 'x', '--workers', '0'],
        '--workers: must be at least 1',
    ),
    (
        ['data', 'synth', '--dataset', 'sysu', '--out', 'x', '--seed', '-3'],
        '--seed: must be in 0..',
    ),
    (
        ['data', 'synth', '--dataset', 'sysu', '--out', 'x', '--ids', '0'],
        '--ids: must be at least 1',
    ),
    (['figures', 'run', '--queries', '0'], '--queries: must be at least 1'),
    (['figures', 'run', '--topk', '-1'], '--topk: must be at least 1'),
    (['figures', 'run', '--ids', '0'], '--ids: must be at least 1'),
    (['figures', 'run', '--trial', '10'], '--trial: must be in 0..9, got 10'),
    (['figures', 'run', '--seed', 'x'], "--seed: 'x' is not an integer"),
    (['cache', 'clear', '--older-than', 'inf'], '--older-than: must be a finite number'),
    (['cache', 'clear', '--older-than', '-1'], '--older-than: must be at least 0'),
    (
        ['leaderboard', '--demo', '--gpus-per-run', '-1', '--dry-run'],
        '--gpus-per-run: must be at least 0',
    ),
    (['leaderboard', '--demo', '--time-min', '0', '--dry-run'], '--time-min: must be at least 1'),
    (
        ['bench', 'train', 'agw_demo_sysu', '--data-root', '.', '--iters', '0'],
        '--iters must be at least 1',
    ),
    (['bench', 'extract', '--batches', '0'], '--batches must be at least 1'),
]


@pytest.mark.parametrize('argv, says', NUMBERS, ids=[' '.join(a[:1] + a[-2:]) for a, _ in NUMBERS])
def test_every_numeric_option_is_range_checked_when_parsed(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert says in capsys.readouterr().err


def test_bench_train_takes_config_names_like_train(regdb_root, tmp_path, monkeypatch, capsys):
    import harness.bench.train as bench_train

    seen = {}

    def measure(config, data_root, setting, iters, warmup, work_dir, options=None):
        seen['config'] = config
        return dict(setting=setting, images_per_s=10.0, batch_size=8)

    monkeypatch.setattr(bench_train, 'measure', measure)
    monkeypatch.setattr(bench_train, '_record_own_setting', lambda *a: None)
    argv = ['bench', 'train', 'agw_demo_regdb', '--data-root', str(regdb_root)]
    assert main([*argv, '--settings', 'fp32', '--work-dir', str(tmp_path / 'w')]) == 0
    assert seen['config'] == str(ROOT / 'methods' / 'agw' / 'configs' / 'agw_demo_regdb.py')
    # --json onto the config it resolved is refused like every other output
    assert main([*argv, '--json', seen['config']]) == 2
    assert f'--json {seen["config"]} is the config itself' in capsys.readouterr().err
