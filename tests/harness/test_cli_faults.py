"""Every ordinary fault of the ``vireid`` command line: one message (what, where, how to fix), exit
code 2 (1 for a run that failed), no traceback unless ``--debug``.

The cases are a table: the command line, the exit code and fragments of the message it prints.
The faults that used to give wrong results come first, then those that used to end in a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.checkpoints import describe_model
from harness.cli import main
from protocols.evaluation import test_records

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = {m: ROOT / 'methods' / m / 'configs' for m in ('agw', 'mmn')}
AGW_DEMO = CONFIGS['agw'] / 'agw_demo_sysu.py'
RECORDS = Path(__file__).resolve().parent / 'fixtures' / 'records' / 'runs'


@dataclass
class World:
    """The files the cases point at."""

    tmp: Path
    sysu: Path  # synthetic SYSU-MM01 (read-only by convention)
    sysu_no_cam6: Path
    unwritable: Path  # a folder path nothing can be created under
    mmn_ckpt: Path  # a harness checkpoint of another method
    full_ckpt: Path  # a full-size (ResNet-50) AGW checkpoint
    crafted: Path  # a .pth that creates `marker` when unpickled
    marker: Path
    empty: Path
    garbage: Path
    official: Path  # stands in for an official checkpoint (only its path matters here)
    bad_config: Path
    features: Path


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), 'w'))


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Checkpoints that are expensive to make, made once."""
    from harness.api import load_model
    from methods.agw.model import AGW

    tmp = tmp_path_factory.mktemp('ckpts')
    mmn = load_model(CONFIGS['mmn'] / 'mmn_demo_sysu.py', num_classes=38)
    torch.save(
        {'state_dict': mmn.state_dict(), 'meta': describe_model('mmn', 38, 'mmn_demo_sysu.py')},
        tmp / 'mmn_demo.pth',
    )
    with torch.device('meta'):  # shapes only: the mismatch is found before any weight is copied
        shapes = AGW(num_classes=395, backbone=dict(pretrained=False)).state_dict()
    torch.save(
        {k: torch.zeros(v.shape, dtype=v.dtype) for k, v in shapes.items()}, tmp / 'agw_full.pth'
    )
    return {'mmn': tmp / 'mmn_demo.pth', 'full': tmp / 'agw_full.pth'}


@pytest.fixture
def world(tmp_path: Path, sysu_root: Path, checkpoints: dict[str, Path]) -> World:
    if os.geteuid() == 0:  # root ignores permissions: a path below a regular file cannot exist
        blocker = tmp_path / 'readonly'
        blocker.write_text('a file, not a folder')
    else:
        blocker = tmp_path / 'readonly'
        blocker.mkdir()
        blocker.chmod(0o555)
    no_cam6 = Path(shutil.copytree(sysu_root, tmp_path / 'SYSU-no-cam6'))
    shutil.rmtree(no_cam6 / 'cam6')
    (no_cam6 / 'cam6').mkdir()
    marker = tmp_path / 'code-ran'
    torch.save({'state_dict': {}, 'x': _Payload(marker)}, tmp_path / 'crafted.pth')
    (tmp_path / 'empty.pth').write_bytes(b'')
    (tmp_path / 'garbage.pth').write_bytes(bytes(range(256)) * 2)
    (tmp_path / 'official.t').write_bytes(b'official weights')
    (tmp_path / 'bad.py').write_text("protocol_base = 'sysu'\nmodel = dict(type='AGW',\n")
    records = test_records('sysu', sysu_root)
    pids = sorted({r.pid for r in records})
    np.savez(
        tmp_path / 'f.npz',
        paths=np.array([r.path for r in records]),
        features=np.eye(len(pids), dtype=np.float32)[[pids.index(r.pid) for r in records]],
    )
    yield World(
        tmp_path,
        sysu_root,
        no_cam6,
        blocker / 'out',
        checkpoints['mmn'],
        checkpoints['full'],
        tmp_path / 'crafted.pth',
        marker,
        tmp_path / 'empty.pth',
        tmp_path / 'garbage.pth',
        tmp_path / 'official.t',
        tmp_path / 'bad.py',
        tmp_path / 'f.npz',
    )
    if blocker.is_dir():
        blocker.chmod(0o755)


def _unwritable_says(w: World) -> tuple[str, ...]:
    fix = 'a file, not a folder' if os.geteuid() == 0 else 'choose a folder you may write to'
    return (str(w.unwritable.parent), fix)


@dataclass
class Case:
    id: str
    argv: Callable[[World], list]
    says: Callable[[World], tuple[str, ...]] | tuple[str, ...]
    code: int = 2
    env: tuple[tuple[str, str], ...] = ()


CASES = [
    # --- were bad: wrong results or silent damage ---------------------------------------------
    Case(
        'test-other-method-checkpoint',
        lambda w: ['test', AGW_DEMO, w.mmn_ckpt, '--data-root', w.sysu, '--work-dir', w.tmp / 't'],
        (
            'does not fit the model of',
            'missing from the checkpoint',
            'mmg.visible.encode.weight',
            "likely cause: the checkpoint is of method 'mmn', the config of 'agw'",
        ),
    ),
    Case(
        'test-full-checkpoint-with-demo-config',
        lambda w: ['test', AGW_DEMO, w.full_ckpt, '--data-root', w.sysu, '--work-dir', w.tmp / 't'],
        (
            'unexpected in the checkpoint',
            'backbone.shared.layer1.1.conv1.weight',
            "the checkpoint's ResNet has 3/4/6/3 blocks per stage, the model 1/1/1/1",
            'a full-size checkpoint with a demo config',
        ),
    ),
    Case(
        'test-crafted-pickle-under-TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD',
        lambda w: ['test', AGW_DEMO, w.crafted, '--data-root', w.sysu],
        lambda w: (
            str(w.crafted),
            'holds pickled Python objects',
            'can run arbitrary code',
            '--trusted',
        ),
        env=(('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1'),),
    ),
    Case(
        'train-cfg-options-typo',
        lambda w: ['train', AGW_DEMO, '--cfg-options', 'train_cfg.max_epoch=1'],
        (
            '--cfg-options train_cfg.max_epoch: no such config key',
            'did you mean train_cfg.max_epochs?',
        ),
    ),
    Case(
        'leaderboard-cfg-options-typo (refused before any run starts)',
        lambda w: [
            'leaderboard',
            '--demo',
            '--methods',
            'agw',
            '--out',
            w.tmp / 'lb',
            '--cfg-options',
            'train_cfg.max_epoch=1',
        ],
        ('did you mean train_cfg.max_epochs?',),
    ),
    Case(
        'train-cfg-options-unknown-key',
        lambda w: [
            'train',
            AGW_DEMO,
            '--cfg-options',
            'train_cfg.max_epochs=1',
            'nonexistent_key.foo=3',
        ],
        ('--cfg-options nonexistent_key.foo: no such config key', 'top-level keys: amp,'),
    ),
    Case(
        'convert-onto-its-source',
        lambda w: ['convert', 'agw', w.official, w.official],
        lambda w: (f'DST {w.official} is the source checkpoint itself', 'nothing was written'),
    ),
    Case(
        'convert-onto-an-existing-file',
        lambda w: ['convert', 'agw', w.official, w.empty],
        lambda w: (f'the destination {w.empty} exists', 'pass --force'),
    ),
    # --- were tracebacks or unclear ------------------------------------------------------------
    Case(
        'train-bad-value',
        lambda w: ['train', AGW_DEMO, '--cfg-options', 'train_cfg.max_epochs=abc'],
        ("--cfg-options train_cfg.max_epochs='abc': expected an integer",),
    ),
    Case(
        'train-protocol-field',
        lambda w: ['train', AGW_DEMO, '--cfg-options', 'protocol.trials=3'],
        (
            'changes protocol fields',
            'protocol.trials: protocol 10 -> config 3',
            '--allow-protocol-change',
        ),
    ),
    Case(
        'cfg-options-without-equals',
        lambda w: ['train', AGW_DEMO, '--cfg-options', 'log.interval'],
        ("argument --cfg-options: 'log.interval' is not KEY=VALUE",),
    ),
    Case(
        'config-syntax-error',
        lambda w: ['train', w.bad_config],
        lambda w: (f'{w.bad_config} line 2: syntax error', 'fix the config file'),
    ),
    Case(
        'config-missing',
        lambda w: ['test', w.tmp / 'nope.py', w.empty],
        lambda w: (f'config file {w.tmp / "nope.py"} does not exist',),
    ),
    Case(
        'empty-checkpoint',
        lambda w: ['test', AGW_DEMO, w.empty, '--data-root', w.sysu],
        lambda w: (f'checkpoint {w.empty} is empty (0 bytes)', 'use an earlier checkpoint'),
    ),
    Case(
        'random-bytes-checkpoint',
        lambda w: ['test', AGW_DEMO, w.garbage, '--data-root', w.sysu],
        lambda w: (f'{w.garbage} is not a PyTorch checkpoint',),
    ),
    Case(
        'checkpoint-is-a-folder',
        lambda w: ['test', AGW_DEMO, w.tmp, '--data-root', w.sysu],
        lambda w: (f'checkpoint {w.tmp} is a folder',),
    ),
    Case(
        'unknown-method (KeyError, shown without quotes)',
        lambda w: ['convert', 'nosuch', w.official, 'x'],
        ("error: no method 'nosuch' is installed; found: agw",),
    ),
    Case(
        'jobs-below-one',
        lambda w: ['leaderboard', '--demo', '--jobs', '-2', '--dry-run'],
        ('argument --jobs: must be at least 1, got -2',),
    ),
    Case(
        'empty-camera-folder',
        lambda w: ['data', 'check', '--dataset', 'sysu', '--root', w.sysu_no_cam6],
        lambda w: (f'camera folder(s) {w.sysu_no_cam6 / "cam6"} hold no images',),
    ),
    Case(
        'unwritable-leaderboard-out',
        lambda w: ['leaderboard', '--demo', '--methods', 'agw', '--out', w.unwritable],
        _unwritable_says,
    ),
    Case(
        'unwritable-tables-out',
        lambda w: ['tables', '--records', RECORDS, '--out', w.unwritable, '--no-plots'],
        _unwritable_says,
    ),
    Case(
        'unwritable-train-work-dir',
        lambda w: ['train', AGW_DEMO, '--data-root', w.sysu, '--work-dir', w.unwritable],
        _unwritable_says,
    ),
    Case(
        'unwritable-score-json',
        lambda w: [
            'score',
            w.features,
            '--dataset',
            'sysu',
            '--root',
            w.sysu,
            '--json',
            w.unwritable / 'r.json',
        ],
        _unwritable_says,
    ),
    Case(
        'unwritable-synth-out',
        lambda w: ['data', 'synth', '--dataset', 'regdb', '--ids', '4', '--out', w.unwritable],
        _unwritable_says,
    ),
]


def _run(
    argv: list, env: tuple, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> tuple[int, str]:
    for key, value in env:
        monkeypatch.setenv(key, value)
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse usage errors
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize('case', CASES, ids=[c.id for c in CASES])
def test_fault_prints_one_message(case: Case, world: World, monkeypatch, capsys):
    code, err = _run(case.argv(world), case.env, monkeypatch, capsys)
    says = case.says(world) if callable(case.says) else case.says
    assert code == case.code, err
    message = err[err.index('error: ') :] if 'error: ' in err else err
    for fragment in says:
        assert fragment in message, f'{fragment!r} not in {message!r}'
    assert 'Traceback' not in err and err.count('error: ') == 1
    assert not message.removeprefix('error: ').startswith(("'", '"'))
    assert not world.marker.exists()  # the crafted pickle never ran


def test_debug_keeps_the_traceback(world):
    with pytest.raises(ValueError, match='no such config key'):
        main(['train', str(AGW_DEMO), '--cfg-options', 'train_cfg.max_epoch=1', '--debug'])


def test_convert_leaves_its_source_alone_and_force_replaces(world, capsys):
    before = world.official.read_bytes()
    assert main(['convert', 'agw', str(world.official), str(world.official)]) == 2
    assert world.official.read_bytes() == before
    # --force lets the converter run (and refuse this fake official file for what it is).
    assert main(['convert', 'agw', str(world.official), str(world.empty), '--force']) == 2
    assert 'is not a PyTorch checkpoint' in capsys.readouterr().err


def test_tables_skip_a_malformed_record_with_a_warning_and_build_the_rest(tmp_path, capsys):
    records = Path(shutil.copytree(RECORDS / 'agw', tmp_path / 'runs' / 'agw'))
    bad = tmp_path / 'runs' / 'mmn' / 'mmn_sysu' / 'sysu' / 'record.json'
    bad.parent.mkdir(parents=True)
    good = json.loads((records / 'agw_sysu' / 'sysu' / 'record.json').read_text())
    bad.write_text(
        json.dumps(
            {
                **good,
                'method': 'mmn',
                'method_title': 'MMN',
                'results': {'all-single': [1, 2]},
                'entry': {'method': 'mmn', 'kind': 'full', 'label': 'MMN', 'row': None},
            }
        )
    )
    broken = tmp_path / 'runs' / 'mmn' / 'mmn_regdb' / 'regdb-split1' / 'record.json'
    broken.parent.mkdir(parents=True)
    broken.write_text('{"status": "done", "results": ')  # cut short
    code = main(
        [
            'tables',
            '--records',
            str(tmp_path / 'runs'),
            '--out',
            str(tmp_path / 't'),
            '--reported',
            '',
            '--no-plots',
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert (
        f'vireid tables: warning: skipping {bad}: results["all-single"] is a list' in captured.err
    )
    assert f'vireid tables: warning: skipping {broken}: not valid JSON' in captured.err
    table = (tmp_path / 't' / 'comparison.md').read_text()
    assert '| AGW ' in table and 'MMN' not in table
    assert 'mmn/mmn_sysu/sysu/record.json' in (tmp_path / 't' / 'tables.md').read_text()
