"""Nothing overwritten, nothing mixed: one writer per run directory, done means done with this
config, an interruption recorded, a damaged latest checkpoint stepped over, damaged records and
records of different configs never averaged.

Each test plays the bad case of issue 26 it is named after; the toy plugin (tests/fixtures) trains
in seconds on the synthetic SYSU-MM01.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.checkpoints import load_checkpoint
from harness.cli import main
from harness.records import record_problem
from harness.tables.build import Column, collect

ROOT = Path(__file__).resolve().parents[2]
TOY_PLUGIN = ROOT / 'tests' / 'fixtures' / 'toy_plugin'
TOY_SYSU = TOY_PLUGIN / 'vireid_toy' / 'configs' / 'toy_sysu.py'
RECORDS = Path(__file__).resolve().parent / 'fixtures' / 'records' / 'runs'
# Larger batches: few iterations per epoch (the toy model trains an epoch in about a second).
FAST = ['sampler.num_instances=8', 'train_dataloader.batch_size=64', 'log.interval=100']
WAIT_S = 300  # for a subprocess to get going on a loaded 2-core machine


def _train_argv(work: Path, data_root: Path, *options: str, resume: bool = False) -> list[str]:
    argv = ['train', str(TOY_SYSU), '--work-dir', str(work), '--data-root', str(data_root)]
    return argv + (['--resume'] if resume else []) + ['--cfg-options', *FAST, *options]


def _spawn(argv: list[str], log: Path) -> subprocess.Popen:
    """``vireid ARGV`` in a process of its own (the toy plugin installed), output to ``log``."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = os.pathsep.join(
        filter(None, [str(TOY_PLUGIN), str(ROOT), env.get('PYTHONPATH')])
    )
    with open(log, 'wb') as fh:
        return subprocess.Popen(
            [sys.executable, '-m', 'harness', *argv], stdout=fh, stderr=subprocess.STDOUT, env=env
        )


def _wait_for(path: Path, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while not path.exists():
        assert proc.poll() is None, f'the training ended early:\n{log.read_text()[-3000:]}'
        assert time.monotonic() < deadline, f'no {path} after {WAIT_S} s'
        time.sleep(0.2)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _listing(folder: Path) -> dict[str, int]:
    """Every file and its mtime (the lock file aside: taking the lock writes the holder's name)."""
    return {
        p.relative_to(folder).as_posix(): p.stat().st_mtime_ns
        for p in folder.rglob('*')
        if p.name != '.lock'
    }


# --------------------------------------------------------------------------------------------------
# One run directory, one writer


def test_a_second_train_on_a_busy_work_dir_names_the_holder_and_writes_nothing(
    toy_plugin, sysu_root, tmp_path, capsys
):
    work = tmp_path / 'run'
    log = tmp_path / 'first.log'
    first = _spawn(_train_argv(work, sysu_root, 'train_cfg.max_epochs=1000'), log)
    try:
        _wait_for(work / 'epoch_1.pth', first, log)
        config_before = (work / 'config.py').read_text()
        record_before = json.loads((work / 'record.json').read_text())
        logs_before = sorted(p.name for p in work.iterdir() if p.is_dir())
        # Another lr, so that a second writer would leave its mark in config.py and the record.
        code = main(
            _train_argv(
                work, sysu_root, 'train_cfg.max_epochs=1', 'optim_wrapper.optimizer.lr=0.01'
            )
        )
        err = capsys.readouterr().err
        assert first.poll() is None, 'the first training must still be running'
        assert code == 2, err
        assert f'{work} is being written by process {first.pid} on {os.uname().nodename}' in err
        assert f'-m harness train {TOY_SYSU}' in err  # the holder's command
        assert 'since 20' in err and 'another work dir' in err
        assert (work / 'config.py').read_text() == config_before
        record = json.loads((work / 'record.json').read_text())
        assert record['config_hash'] == record_before['config_hash']
        assert sorted(p.name for p in work.iterdir() if p.is_dir()) == logs_before  # no new log
    finally:
        _stop(first)


# --------------------------------------------------------------------------------------------------
# An interruption is recorded


def test_sigterm_to_train_records_the_interruption_and_how_to_resume(sysu_root, tmp_path):
    work = tmp_path / 'run'
    log = tmp_path / 'train.log'
    proc = _spawn(_train_argv(work, sysu_root, 'train_cfg.max_epochs=1000'), log)
    try:
        _wait_for(work / 'epoch_1.pth', proc, log)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=WAIT_S)
    finally:
        _stop(proc)
    out = log.read_text()
    assert proc.returncode == 128 + signal.SIGTERM, out[-3000:]
    record = json.loads((work / 'record.json').read_text())
    assert record['status'] == 'failed' and record['error']['type'] == 'Interrupted'
    stop = record['interruption']
    assert stop['signal'] == 'SIGTERM' and stop['max_epochs'] == 1000
    done = stop['epochs_done']
    assert done >= 1
    # (a SIGTERM between an epoch's checkpoint and the loop's count finds one checkpoint more)
    assert stop['checkpoint'] in (str(work / f'epoch_{n}.pth') for n in (done, done + 1))
    load_checkpoint(stop['checkpoint'])  # complete
    assert f'vireid train {TOY_SYSU} --work-dir {work} --resume' in stop['resume']
    assert 'the run was stopped by SIGTERM after' in out and 'Traceback' not in out


def test_a_sigterm_that_other_code_turns_into_another_error_is_recorded_as_the_stop(
    toy_plugin, sysu_root, tmp_path, monkeypatch
):
    """mmengine formats the config of every checkpoint inside a bare ``except`` that re-raises
    "SyntaxError: Failed to format the config file": a SIGTERM arriving then (about one in five
    stops of a toy run on a loaded machine) was recorded as a failed run (exit 1), not a stop."""
    from harness.engine.run import run_experiment
    from harness.engine.runner import HarnessRunner
    from harness.errors import Interrupted

    def save_checkpoint(self, *args, **kwargs):
        try:  # what mmengine's Config.pretty_text does around yapf
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # (the handler raises before this ends)
        except:  # noqa: E722
            raise SyntaxError('Failed to format the config file') from None

    monkeypatch.setattr(HarnessRunner, 'save_checkpoint', save_checkpoint)
    work = tmp_path / 'run'
    with pytest.raises(Interrupted, match='the run was stopped by SIGTERM') as err:
        run_experiment(
            str(TOY_SYSU),
            str(work),
            data_root=str(sysu_root),
            cfg_options={'sampler.num_instances': 8, 'train_dataloader.batch_size': 64},
            log_level='WARNING',
        )
    assert err.value.exit_code == 128 + signal.SIGTERM
    record = json.loads((work / 'record.json').read_text())
    assert record['status'] == 'failed' and record['error']['type'] == 'Interrupted', record[
        'error'
    ]
    assert record['interruption']['signal'] == 'SIGTERM'


# --------------------------------------------------------------------------------------------------
# Resume: a damaged latest checkpoint, a changed config


@pytest.fixture(scope='module')
def trained(tmp_path_factory, sysu_root) -> Path:
    """A finished 2-epoch toy run (epoch_1.pth and epoch_2.pth kept)."""
    from harness import plugins

    sys.path.insert(0, str(TOY_PLUGIN))
    plugins.discover(refresh=True)
    try:
        work = tmp_path_factory.mktemp('trained') / 'run'
        assert main(_train_argv(work, sysu_root, 'train_cfg.max_epochs=2')) == 0
    finally:
        sys.path.remove(str(TOY_PLUGIN))
        plugins.discover(refresh=True)
    return work


def _copy_run(trained: Path, dest: Path) -> Path:
    """A copy of the trained run whose last_checkpoint names its own file (not the original's)."""
    work = Path(shutil.copytree(trained, dest))
    named = Path((work / 'last_checkpoint').read_text().strip()).name
    (work / 'last_checkpoint').write_text(str(work / named))
    return work


def test_a_damaged_latest_checkpoint_is_kept_aside_and_the_previous_one_resumed(
    toy_plugin, trained, sysu_root, tmp_path, capsys
):
    work = _copy_run(trained, tmp_path / 'run')
    latest = work / 'epoch_2.pth'
    data = latest.read_bytes()
    latest.write_bytes(data[: len(data) // 2])  # cut short, as a crash while copying leaves it
    argv = _train_argv(work, sysu_root, 'train_cfg.max_epochs=2', resume=True)
    assert main(argv) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    aside = work / 'epoch_2.pth.damaged'
    assert f'{latest} is damaged (cut short' in err and f'kept as {aside}' in err
    assert f'resuming from the previous checkpoint {work / "epoch_1.pth"}' in err
    assert aside.read_bytes() == data[: len(data) // 2]
    record = json.loads((work / 'record.json').read_text())
    assert record['status'] == 'done'
    assert record['provenance']['resumed_from'] == str(work / 'epoch_1.pth')
    assert record['provenance']['damaged_checkpoints'][0]['moved_to'] == str(aside)
    load_checkpoint(latest)  # epoch 2 trained again, complete
    assert main(argv) == 0  # and the next retry has nothing left to trip over


@pytest.mark.parametrize('finished', [True, False], ids=['finished', 'half-trained'])
def test_resuming_under_a_changed_config_is_refused_and_nothing_is_written(
    toy_plugin, trained, sysu_root, tmp_path, capsys, finished
):
    work = _copy_run(trained, tmp_path / 'run')
    if not finished:  # stopped after epoch 1
        (work / 'epoch_2.pth').unlink()
        (work / 'last_checkpoint').write_text(str(work / 'epoch_1.pth'))
        record = json.loads((work / 'record.json').read_text())
        (work / 'record.json').write_text(json.dumps({**record, 'status': 'failed'}))
    before = _listing(work)
    argv = _train_argv(
        work, sysu_root, 'train_cfg.max_epochs=2', 'optim_wrapper.optimizer.lr=0.01', resume=True
    )
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert f'{work} holds a run of another config (optim_wrapper.optimizer.lr: 0.05 -> 0.01)' in err
    assert _listing(work) == before
    # A setting that does not change what is trained (logging) resumes.
    assert main(argv[:-1] + ['log.interval=7']) == 0, capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# The leaderboard: done means done with this config


def _leaderboard_argv(out: Path, sysu_root: Path, *options: str) -> list[str]:
    return [
        'leaderboard', '--methods', 'toy', '--datasets', 'sysu', '--kinds', 'demo',
        '--out', str(out), '--data-root-sysu', str(sysu_root), '--launcher', 'inline',
        '--no-plots', '--cfg-options', *FAST, *options,
    ]  # fmt: skip


def test_a_finished_run_of_another_config_is_not_done_for_the_leaderboard(
    toy_plugin, trained, sysu_root, tmp_path, capsys
):
    out = tmp_path / 'lb'
    work = _copy_run(trained, out / 'runs' / 'toy' / 'toy_sysu' / 'sysu')
    before = _listing(work)
    code = main(_leaderboard_argv(out, sysu_root, 'train_cfg.max_epochs=3'))
    err = capsys.readouterr().err
    assert code == 2, err
    assert 'toy/toy_sysu/sysu: train_cfg.max_epochs: 2 -> 3' in err
    assert '--rerun' in err and 'superseded/' in err
    assert _listing(work) == before  # nothing ran, nothing moved
    # --dry-run shows it; the same config (a runtime setting aside) is done.
    assert main(_leaderboard_argv(out, sysu_root, 'train_cfg.max_epochs=3', '--dry-run')) == 0
    assert 'changed  toy/toy_sysu/sysu' in capsys.readouterr().out
    argv = _leaderboard_argv(out, sysu_root, 'train_cfg.max_epochs=2', 'log.interval=9')
    assert main([*argv, '--dry-run']) == 0
    assert 'done     toy/toy_sysu/sysu' in capsys.readouterr().out


def test_rerun_of_a_changed_run_keeps_the_old_one_aside(toy_plugin, trained, sysu_root, tmp_path):
    from harness.leaderboard.options import LeaderboardOptions, plan_from_options
    from harness.leaderboard.worker import execute

    out = tmp_path / 'lb'
    work = _copy_run(trained, out / 'runs' / 'toy' / 'toy_sysu' / 'sysu')
    old_record = (work / 'record.json').read_text()
    options = LeaderboardOptions(
        methods='toy', datasets='sysu', kinds='demo', out=str(out),
        data_root_sysu=str(sysu_root),
        cfg_options={'sampler.num_instances': 8, 'train_dataloader.batch_size': 64,
                     'train_cfg.max_epochs': 3},
    )  # fmt: skip
    [run], _ = plan_from_options(options)
    calls = []

    def engine(**kwargs):  # stands in for the training: what it finds in the run dir
        calls.append(sorted(p.name for p in Path(kwargs['work_dir']).iterdir()))
        rec = {'schema': 1, 'status': 'done', 'config_hash': run.config_hash}
        (Path(kwargs['work_dir']) / 'record.json').write_text(json.dumps(rec))

    refused = execute(run, runner=engine, rerun=False)
    assert refused['status'] == 'failed' and 'holds a run of another config' in refused['error']
    assert 'train_cfg.max_epochs: 2 -> 3' in refused['error'] and not calls
    assert (work / 'record.json').read_text() == old_record
    assert execute(run, runner=engine, rerun=True)['status'] == 'done'
    [aside] = (work / 'superseded').iterdir()
    assert aside.name.endswith(json.loads(old_record)['config_hash'][:8])
    assert (aside / 'record.superseded.json').read_text() == old_record
    assert {'epoch_1.pth', 'epoch_2.pth', 'config.py', 'last_checkpoint'} <= {
        p.name for p in aside.iterdir()
    }
    assert not any(name.endswith('.pth') or name == 'record.json' for name in calls[0])


# --------------------------------------------------------------------------------------------------
# Tables: never a cell of two configs, never a damaged record


def _records(tmp_path: Path) -> Path:
    root = tmp_path / 'runs'
    shutil.copytree(RECORDS / 'agw', root / 'agw')
    return root


def _split(root: Path, split: int) -> Path:
    return root / 'agw' / 'agw_regdb' / f'regdb-split{split}' / 'record.json'


def _edit(path: Path, **fields) -> dict:
    rec = {**json.loads(path.read_text()), **fields}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))
    return rec


def _tables_argv(records: Path, out: Path) -> list[str]:
    return ['tables', '--records', str(records), '--out', str(out), '--reported', '', '--no-plots']


def _regdb_cells(root: Path) -> dict[str, tuple]:
    """label -> (mean, std, n) of each AGW row's RegDB V->T R1."""
    return {
        e.label: (c.mean, c.std, c.n)
        for e in collect(root).entries
        if e.method == 'agw' and (c := e.cell(Column('regdb', 'v2t', 'R1')))
    }


def test_tables_never_average_splits_of_two_configs(tmp_path, capsys):
    root = _records(tmp_path)
    one = _edit(_split(root, 1), config_hash='a' * 40, config_hash_scheme=2)
    two = json.loads(_split(root, 2).read_text())
    later = {**two['provenance'], 'finished': '2026-02-01T10:00:00+00:00'}  # split 2 rerun later
    two = _edit(_split(root, 2), config_hash='b' * 40, config_hash_scheme=2, provenance=later)
    r1 = [r['results']['v2t']['mean']['R1'] for r in (one, two)]
    with pytest.warns(UserWarning, match='regdb records of 2 configs'):
        cells = _regdb_cells(root)
    # The newest config stays in the row; the other is a row of its own, each a single split.
    assert cells == {'AGW': (r1[1], None, 1), 'AGW [config aaaaaaaa]': (r1[0], None, 1)}
    code = main(_tables_argv(root, tmp_path / 't'))
    err = capsys.readouterr().err
    assert code == 0 and 'config hashes bbbbbbbb, aaaaaaaa' in err
    table = (tmp_path / 't' / 'comparison.md').read_text()
    assert '| AGW [config aaaaaaaa] ' in table and 'never averaged' in table
    # One config: one cell over both splits, as before.
    _edit(_split(root, 1), config_hash='b' * 40)
    assert _regdb_cells(root) == {'AGW': (pytest.approx(sum(r1) / 2), pytest.approx(1.0), 2)}


# record fields -> the problem named
DAMAGED = [
    ({'split': 3, 'results': 'nan'}, 'R1 is nan, not a finite number'),
    ({'split': 4, 'schema': 99}, '"schema" is 99; this vireid-bench reads record schema 1..1'),
    ({'split': 11}, '"split" is 11, expected a RegDB split number 1..10'),
    ({'split': 5, 'results': 150.0}, 'R1 is 150.0, outside 0..100'),
]


def test_damaged_records_are_flagged_and_skipped_by_the_tables_never_averaged(tmp_path, capsys):
    root = _records(tmp_path)
    good = _regdb_cells(root)
    bad_paths = []
    for fields, _ in DAMAGED:
        rec = json.loads(_split(root, 1).read_text())
        if 'results' in fields:
            value = float(fields.pop('results'))
            rec['results']['v2t']['mean']['R1'] = value
        path = root / 'agw' / 'agw_regdb' / f'damaged-{len(bad_paths)}' / 'record.json'
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({**rec, **fields}))  # NaN is written as JSON's NaN
        bad_paths.append(path)
    for path, (_, says) in zip(bad_paths, DAMAGED, strict=True):
        assert says in record_problem(json.loads(path.read_text()))
    code = main(_tables_argv(root, tmp_path / 't'))
    err = capsys.readouterr().err
    assert code == 0
    for path, (_, says) in zip(bad_paths, DAMAGED, strict=True):
        assert f'vireid tables: warning: skipping {path}: ' in err and says in err
    with pytest.warns(UserWarning):
        assert _regdb_cells(root) == good  # the two good splits only
    assert not math.isnan(good['AGW'][0]) and good['AGW'][2] == 2
