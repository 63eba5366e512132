"""`vireid leaderboard`: planning, resume after kills, failure isolation, locks, launchers.

The engine is replaced by a fake ``run_experiment`` (written into a temporary module so worker
subprocesses and submitit jobs can import it) that trains three "epochs", checkpoints after each
one, resumes from the checkpoint, and logs every call and epoch to a JSON-lines file: the tests
count those lines to prove that nothing is lost and nothing is redone.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from harness.atomic import write_json_atomic
from harness.leaderboard import launchers as L
from harness.leaderboard.locks import Busy, FileLock
from harness.leaderboard.plan import build_plan, parse_splits, retry_command, run_state
from harness.leaderboard.progress import Progress
from harness.leaderboard.session import run_leaderboard
from harness.plugins import MethodSpec
from harness.records import read_record

FAKE_ENGINE = r"""
import json, os, runpy, signal, time
from pathlib import Path

from harness.atomic import write_json_atomic

EPOCHS = 3


def _log(**kw):
    with open(os.environ['FAKE_ENGINE_LOG'], 'a') as fh:
        fh.write(json.dumps(kw) + '\n')


def _setting(base, trials):
    mean = {'R1': base, 'R10': base + 10, 'R20': base + 20, 'mAP': base - 5, 'mINP': base - 10}
    return {'per_trial': [dict(mean) for _ in range(trials)], 'mean': mean,
            'std': {k: 0.0 for k in mean}, 'cmc': [min(100.0, base + i) for i in range(20)]}


def run_experiment(config, work_dir, data_root=None, cfg_options=None, resume=True,
                   allow_protocol_change=False, launcher='none'):
    cfg = runpy.run_path(config)
    wd = Path(work_dir)
    wd.mkdir(parents=True, exist_ok=True)
    mode = cfg.get('fake', 'ok')
    ckpt = wd / 'last_checkpoint'
    start = int(ckpt.read_text()) if resume and ckpt.exists() else 0
    split = (cfg_options or {}).get('protocol.split')
    _log(event='call', work_dir=str(wd), start=start, resume=resume, split=split,
         data_root=data_root, launcher=launcher, pid=os.getpid(), t=time.time())
    rec = dict(schema=1, status='running', method=cfg['entry']['method'],
               method_title=cfg['entry']['label'], config=config, entry=cfg['entry'],
               dataset=cfg['protocol_base'], split=split, comparable=True, optimistic=False,
               results={}, provenance={'finished': time.strftime('%Y-%m-%dT%H:%M:%S'),
                                       'job_id': None}, work_dir=str(wd), error=None)
    write_json_atomic(wd / 'record.json', rec)
    try:
        for epoch in range(start, EPOCHS):
            _log(event='epoch', work_dir=str(wd), epoch=epoch)
            if mode == 'fail':
                raise RuntimeError(f'boom in {cfg["entry"]["method"]}')
            if epoch == 1 and mode == 'crash_once' and not (wd / 'crashed').exists():
                (wd / 'crashed').write_text('')
                os.kill(os.getpid(), signal.SIGKILL)       # a kill mid-training
            if epoch == 1 and mode == 'interrupt_once' and not (wd / 'interrupted').exists():
                (wd / 'interrupted').write_text('')
                raise KeyboardInterrupt                   # Ctrl-C mid-training
            time.sleep(cfg.get('sleep', 0.0))
            ckpt.write_text(str(epoch + 1))
        if rec['dataset'] == 'sysu':
            rec['results'] = {s: _setting(cfg.get('score', 50.0), 10)
                              for s in ('all-single', 'all-multi', 'indoor-single', 'indoor-multi')}
        else:
            rec['results'] = {d: _setting(cfg.get('score', 50.0) + split, 1)
                              for d in ('v2t', 't2v')}
        rec['status'] = 'done'
    except BaseException as err:
        rec['status'] = 'failed'
        rec['error'] = {'type': type(err).__name__, 'message': str(err), 'traceback': ''}
        raise
    finally:
        write_json_atomic(wd / 'record.json', rec)
    return rec
"""

RUNNER = 'fake_engine:run_experiment'


def _config(
    folder: Path,
    stem: str,
    dataset: str,
    kind: str = 'full',
    label: str | None = None,
    row: str | None = None,
    **extra,
) -> None:
    method = folder.parent.name
    lines = [
        f'protocol_base = {dataset!r}',
        (
            f'entry = dict(method={method!r}, kind={kind!r}, '
            f'label={label or method.title()!r}, row={row!r})'
        ),
    ]
    lines += [f'{k} = {v!r}' for k, v in extra.items()]
    (folder / f'{stem}.py').write_text('\n'.join(lines) + '\n')


@pytest.fixture
def world(tmp_path, monkeypatch):
    """Fake methods + fake engine: (methods dict, out dir, calls() reader)."""
    (tmp_path / 'fake_engine.py').write_text(FAKE_ENGINE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(
        'PYTHONPATH', os.pathsep.join([str(tmp_path), os.environ.get('PYTHONPATH', '')])
    )
    log = tmp_path / 'calls.jsonl'
    monkeypatch.setenv('FAKE_ENGINE_LOG', str(log))
    methods = {}
    specs = {
        'alpha': [
            ('alpha_sysu', 'sysu', {}),
            ('alpha_regdb', 'regdb', {}),
            ('alpha_demo_sysu', 'sysu', {'kind': 'demo'}),
            ('alpha_b1_sysu', 'sysu', {'kind': 'ablation', 'label': 'alpha w/o x', 'row': 'B1'}),
        ],
        'beta': [('beta_sysu', 'sysu', {'fake': 'fail'})],
        'gamma': [('gamma_sysu', 'sysu', {'fake': 'crash_once'})],
        'delta': [('delta_sysu', 'sysu', {'fake': 'interrupt_once'})],
        'slow': [('slow_sysu', 'sysu', {'sleep': 0.4}), ('slow_regdb', 'regdb', {'sleep': 0.4})],
    }
    for name, configs in specs.items():
        folder = tmp_path / 'plugins' / name / 'configs'
        folder.mkdir(parents=True)
        for stem, dataset, extra in configs:
            _config(folder, stem, dataset, **extra)
        methods[name] = MethodSpec(name=name, title=name.title(), configs=folder)

    def calls(event='call'):
        if not log.exists():
            return []
        return [
            json.loads(line)
            for line in log.read_text().splitlines()
            if json.loads(line)['event'] == event
        ]

    return methods, tmp_path / 'lb', calls


def _per_run(entries) -> Counter:
    return Counter(
        Path(e['work_dir']).relative_to(Path(e['work_dir']).parents[2]).as_posix() for e in entries
    )


def _session(runs, launcher, out, **kw):
    # CMC plots cost seconds on a loaded machine; test_cli_runs_prints_table_and_retry keeps them.
    return run_leaderboard(
        runs, launcher, out, stream=io.StringIO(), reported=None, plots=False, **kw
    )


# --- planning ----------------------------------------------------------------------------------


def test_plan_layout_selection_and_split_options(world):
    methods, out, _ = world
    runs = build_plan(methods, out, names=['alpha'], regdb_splits=(1, 3))
    assert [r.key for r in runs] == [
        'alpha/alpha_b1_sysu/sysu',
        'alpha/alpha_regdb/regdb-split1',
        'alpha/alpha_regdb/regdb-split3',
        'alpha/alpha_sysu/sysu',
    ]
    assert runs[2].work_dir == str(out / 'runs' / 'alpha' / 'alpha_regdb' / 'regdb-split3')
    assert runs[2].run_options() == {'protocol.split': 3} and runs[3].run_options() == {}
    assert runs[0].kind == 'ablation' and runs[0].row == 'B1' and runs[0].label == 'alpha w/o x'
    demo = build_plan(
        methods,
        out,
        names=['alpha'],
        kinds=['demo'],
        datasets=['sysu'],
        data_roots={'sysu': '/d/sysu'},
        cfg_options={'train_cfg.max_epochs': 1},
    )
    assert [r.key for r in demo] == ['alpha/alpha_demo_sysu/sysu']
    assert demo[0].data_root == '/d/sysu' and demo[0].cfg_options == {'train_cfg.max_epochs': 1}
    assert [r.key for r in build_plan(methods, out, names=['alpha'], configs=['alpha_sysu'])] == [
        'alpha/alpha_sysu/sysu'
    ]
    with pytest.raises(KeyError, match="no method 'nope'"):
        build_plan(methods, out, names=['nope'])
    with pytest.raises(KeyError, match='no config named zeta'):
        build_plan(methods, out, names=['alpha'], configs=['zeta'])
    with pytest.raises(ValueError, match='unknown dataset'):
        build_plan(methods, out, datasets=['market'])


def test_parse_splits():
    assert parse_splits('1-10') == tuple(range(1, 11))
    assert parse_splits('3,1, 2-3') == (1, 2, 3)
    assert parse_splits(None, (1, 2)) == (1, 2)
    with pytest.raises(ValueError, match='the splits are 1..10'):
        parse_splits('0,11')
    with pytest.raises(ValueError, match='cannot read'):
        parse_splits('a-b')


def test_retry_command_names_exactly_the_failed_runs(world):
    methods, out, _ = world
    runs = build_plan(
        methods, out, names=['alpha'], configs=['alpha_regdb'], regdb_splits=(2, 5, 7)
    )
    cmd = retry_command(
        [runs[0], runs[2]],
        ['--out', 'o', '--methods', 'alpha,beta', '--rerun', '--jobs', '2', '--regdb-splits=1-10'],
    )
    assert cmd == (
        'vireid leaderboard --out o --jobs 2 --methods alpha --configs alpha_regdb '
        '--datasets regdb --kinds full --regdb-splits 2,7'
    )


def test_bad_config_entry_is_a_clear_error(world, tmp_path):
    methods, out, _ = world
    folder = tmp_path / 'plugins' / 'bad' / 'configs'
    folder.mkdir(parents=True)
    (folder / 'bad_sysu.py').write_text("protocol_base = 'sysu'\n")
    with pytest.raises(ValueError, match=r'bad_sysu.py: a method config must set entry'):
        build_plan({'bad': MethodSpec('bad', 'Bad', folder)}, out)


# --- failures, resume, interrupts --------------------------------------------------------------


def test_failing_method_does_not_stop_the_others_and_summary_names_it(world):
    methods, out, calls = world
    runs = build_plan(methods, out, names=['alpha', 'beta'], regdb_splits=(1,))
    summary = _session(runs, L.InlineLauncher(runner=RUNNER), out, base_argv=['--out', str(out)])
    assert [f['key'] for f in summary['failed']] == ['beta/beta_sysu/sysu']
    assert 'RuntimeError: boom in beta' in summary['failed'][0]['error']
    assert sorted(summary['done']) == [
        'alpha/alpha_b1_sysu/sysu',
        'alpha/alpha_regdb/regdb-split1',
        'alpha/alpha_sysu/sysu',
    ]
    assert summary['retry'] == (
        f'vireid leaderboard --out {out} --methods beta --configs beta_sysu '
        '--datasets sysu --kinds full'
    )
    rec = read_record(out / 'runs/beta/beta_sysu/sysu')
    assert rec['status'] == 'failed' and rec['error']['message'] == 'boom in beta'
    text = (out / 'summary.md').read_text()
    assert 'beta/beta_sysu/sysu' in text and summary['retry'] in text
    table = (out / 'tables' / 'comparison.md').read_text()
    assert '| Alpha' in table and 'Beta' not in table
    assert 'runs/beta/beta_sysu/sysu/record.json' in summary['problems']
    # Starting again retries only the failed run.
    before = len(calls())
    again = _session(runs, L.InlineLauncher(runner=RUNNER), out)
    assert len(calls()) == before + 1 and calls()[-1]['work_dir'].endswith('beta/beta_sysu/sysu')
    assert len(again['already_done']) == 3


def test_leaderboard_interrupted_between_runs_loses_and_redoes_nothing(world, monkeypatch):
    methods, out, calls = world
    runs = build_plan(methods, out, names=['alpha'], kinds=['full'], regdb_splits=(1, 2))
    assert len(runs) == 3
    start = Progress.start

    def interrupt_before_second(self, key, *args):
        if key == runs[1].key and not getattr(Progress, '_interrupted', False):
            Progress._interrupted = True
            raise KeyboardInterrupt
        start(self, key, *args)

    monkeypatch.setattr(Progress, 'start', interrupt_before_second)
    with pytest.raises(KeyboardInterrupt):
        _session(runs, L.InlineLauncher(runner=RUNNER), out)
    assert [run_state(r) for r in runs] == ['pending', 'pending', 'done'] or [
        run_state(r) for r in runs
    ] == ['done', 'pending', 'pending']
    summary = _session(runs, L.InlineLauncher(runner=RUNNER), out)
    assert _per_run(calls()) == Counter({r.key: 1 for r in runs})
    assert len(summary['already_done']) == 1 and len(summary['done']) == 2
    assert all(run_state(r) == 'done' for r in runs)


def test_run_interrupted_mid_training_resumes_from_its_checkpoint(world):
    methods, out, calls = world
    runs = build_plan(methods, out, names=['alpha', 'delta'], kinds=['full'], datasets=['sysu'])
    with pytest.raises(KeyboardInterrupt):
        _session(runs, L.InlineLauncher(runner=RUNNER), out)
    assert run_state(runs[0]) == 'done' and read_record(runs[1].record_path)['status'] == 'failed'
    _session(runs, L.InlineLauncher(runner=RUNNER), out)
    delta = [c for c in calls() if 'delta' in c['work_dir']]
    assert [c['start'] for c in delta] == [0, 1]  # resumed after epoch 0, not restarted
    epochs = [e['epoch'] for e in calls('epoch') if 'delta' in e['work_dir']]
    assert epochs == [0, 1, 1, 2]  # only the interrupted epoch runs twice
    assert _per_run(calls())['alpha/alpha_sysu/sysu'] == 1


def test_worker_killed_mid_training_in_subprocess_is_resumed(world):
    """A SIGKILL in a worker process: the leaderboard survives, records it, the next one resumes."""
    methods, out, calls = world
    runs = build_plan(methods, out, names=['alpha', 'gamma'], kinds=['full'], datasets=['sysu'])
    summary = _session(runs, L.LocalLauncher(jobs=1, runner=RUNNER), out)
    assert summary['done'] == ['alpha/alpha_sysu/sysu']
    assert [f['key'] for f in summary['failed']] == ['gamma/gamma_sysu/sysu']
    assert 'killed by signal 9' in summary['failed'][0]['error']
    rec = read_record(runs[1].record_path)
    assert (
        rec['status'] == 'failed' and 'resumes from the last checkpoint' in rec['error']['message']
    )
    assert (Path(runs[1].work_dir) / 'leaderboard.log').exists()
    summary = _session(runs, L.LocalLauncher(jobs=1, runner=RUNNER), out)
    assert summary['done'] == ['gamma/gamma_sysu/sysu'] and summary['already_done'] == [
        'alpha/alpha_sysu/sysu'
    ]
    gamma = [c for c in calls() if 'gamma' in c['work_dir']]
    assert [c['start'] for c in gamma] == [0, 1]
    assert [e['epoch'] for e in calls('epoch') if 'gamma' in e['work_dir']] == [0, 1, 1, 2]
    assert _per_run(calls())['alpha/alpha_sysu/sysu'] == 1
    assert read_record(runs[1].record_path)['status'] == 'done'


def test_rerun_trains_done_runs_again_from_scratch(world):
    methods, out, calls = world
    runs = build_plan(methods, out, names=['alpha'], configs=['alpha_sysu'])
    _session(runs, L.InlineLauncher(runner=RUNNER), out)
    _session(runs, L.InlineLauncher(runner=RUNNER), out)
    assert len(calls()) == 1
    summary = _session(runs, L.InlineLauncher(runner=RUNNER, rerun=True), out, rerun=True)
    assert summary['done'] == ['alpha/alpha_sysu/sysu'] and len(calls()) == 2
    assert calls()[-1]['resume'] is False
    assert (Path(runs[0].work_dir) / 'record.prev.json').exists()


# --- locks and atomic records ------------------------------------------------------------------


def test_a_run_held_by_another_leaderboard_is_skipped_as_busy(world):
    methods, out, calls = world
    runs = build_plan(methods, out, names=['alpha'], kinds=['full'], regdb_splits=(1,))
    held = runs[0]
    with FileLock(held.lock_path):  # the other leaderboard
        assert run_state(held) == 'busy'
        summary = _session(runs, L.InlineLauncher(runner=RUNNER), out)
    assert summary['busy'] == [held.key] and len(summary['done']) == 1
    assert held.key not in _per_run(calls())
    assert held.key in (out / 'summary.md').read_text()
    summary = _session(runs, L.InlineLauncher(runner=RUNNER), out)
    assert summary['done'] == [held.key] and summary['busy'] == []


def test_two_leaderboards_on_one_folder_run_each_run_once(world):
    """Two sessions at once (threads, each with subprocess workers): no run trains twice."""
    methods, out, calls = world
    runs = build_plan(methods, out, names=['slow'], regdb_splits=(1, 2, 3))
    assert len(runs) == 4
    summaries = [None, None]

    def session(i):
        summaries[i] = _session(runs, L.LocalLauncher(jobs=2, runner=RUNNER), out)

    threads = [threading.Thread(target=session, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join(120)
    assert all(s is not None for s in summaries)
    assert _per_run(calls()) == Counter({r.key: 1 for r in runs})
    assert all(read_record(r.record_path)['status'] == 'done' for r in runs)
    done = summaries[0]['done'] + summaries[1]['done']
    assert sorted(done) == sorted(r.key for r in runs)  # each trained by exactly one session
    assert not summaries[0]['failed'] and not summaries[1]['failed']
    # Runs overlapped: the second started before the first could end (3 epochs x 0.4 s of sleep).
    starts = sorted(c['t'] for c in calls())
    assert starts[1] - starts[0] < 1.2


@pytest.mark.parametrize('launcher', ['inline', 'local'])
def test_run_finished_by_another_leaderboard_after_planning_is_not_redone(world, launcher):
    methods, out, calls = world
    runs = build_plan(methods, out, names=['alpha'], configs=['alpha_sysu'])
    L.InlineLauncher(runner=RUNNER).launch(
        runs, Progress(1, stream=io.StringIO())
    )  # "the other leaderboard"
    assert len(calls()) == 1
    stream = io.StringIO()
    # This session planned the run before it was done, and launches it anyway.
    chosen = (
        L.InlineLauncher(runner=RUNNER) if launcher == 'inline' else L.LocalLauncher(runner=RUNNER)
    )
    [outcome] = chosen.launch(runs, Progress(1, stream=stream))
    assert outcome['status'] == 'done' and outcome['already'] and len(calls()) == 1
    assert (
        'skipped alpha/alpha_sysu/sysu: done by another leaderboard meanwhile' in stream.getvalue()
    )


def test_file_lock_is_exclusive_and_released():
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / '.lock'
        with FileLock(path):
            with pytest.raises(Busy):
                FileLock(path).acquire()
        FileLock(path).acquire().release()


def test_records_are_never_half_written(tmp_path, monkeypatch):
    path = tmp_path / 'record.json'
    write_json_atomic(path, {'status': 'done', 'n': 1})

    def broken_fsync(fd):  # the new text is in the temporary file, then the disk fails
        raise OSError('disk full')

    monkeypatch.setattr(os, 'fsync', broken_fsync)
    with pytest.raises(OSError, match='disk full'):
        write_json_atomic(path, {'status': 'failed'})
    monkeypatch.undo()
    assert read_record(path) == {'status': 'done', 'n': 1}
    assert [p.name for p in tmp_path.iterdir()] == ['record.json']
    write_json_atomic(path, {'i': -1})
    # A reader racing a writer only ever sees whole records.
    stop, seen, bad = threading.Event(), [], []

    def writer():
        i = 0
        while not stop.is_set():
            write_json_atomic(path, {'i': i, 'pad': 'x' * 20000})
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(300):
            text = path.read_text()
            try:
                seen.append(json.loads(text)['i'])
            except json.JSONDecodeError:
                bad.append(text[:50])
    finally:
        stop.set()
        t.join()
    assert not bad and len(seen) == 300


# --- launchers ---------------------------------------------------------------------------------


def test_parallel_local_jobs_overlap(world):
    methods, out, calls = world
    runs = build_plan(methods, out, names=['slow'], regdb_splits=(1,))
    summary = _session(runs, L.LocalLauncher(jobs=2, runner=RUNNER), out)
    assert sorted(summary['done']) == sorted(r.key for r in runs)
    c = calls()
    # Each run sleeps 3 x 0.4 s: the second started while the first was still training.
    assert len(c) == 2 and len({x['pid'] for x in c}) == 2 and abs(c[0]['t'] - c[1]['t']) < 1.2


@pytest.mark.parametrize('cluster', ['debug', 'local'])
def test_submitit_launcher_keeps_job_ids(world, cluster):
    methods, out, calls = world
    runs = build_plan(methods, out, names=['alpha', 'beta'], kinds=['full'], datasets=['sysu'])
    launcher = L.SubmititLauncher(
        out / 'submitit',
        out / 'jobs.json',
        cluster=cluster,
        gpus_per_run=0,
        time_min=5,
        runner=RUNNER,
    )
    summary = _session(runs, launcher, out)
    assert summary['done'] == ['alpha/alpha_sysu/sysu']
    assert [f['key'] for f in summary['failed']] == ['beta/beta_sysu/sysu']
    jobs = json.loads((out / 'jobs.json').read_text())
    assert set(jobs) == {r.key for r in runs}
    assert (
        jobs['alpha/alpha_sysu/sysu']['state'] == 'done'
        and jobs['beta/beta_sysu/sysu']['state'] == 'failed'
    )
    for r in runs:
        job_id = jobs[r.key]['job_id']
        assert job_id and read_record(r.record_path)['provenance']['job_id'] == job_id
    assert len(calls()) == 2


def test_submitit_does_not_resubmit_a_job_still_queued(world, monkeypatch):
    methods, out, calls = world
    runs = build_plan(methods, out, names=['alpha'], kinds=['full'], datasets=['sysu'])
    write_json_atomic(
        out / 'jobs.json',
        {
            runs[0].key: {
                'job_id': '4242',
                'cluster': 'slurm',
                'state': 'SUBMITTED',
                'submitit_folder': str(out / 'submitit'),
            }
        },
    )
    seen = []
    monkeypatch.setattr(
        L.SubmititLauncher, 'job_state', staticmethod(lambda e: seen.append(e) or 'PENDING')
    )
    launcher = L.SubmititLauncher(
        out / 'submitit', out / 'jobs.json', cluster='debug', gpus_per_run=0, runner=RUNNER
    )
    summary = _session(runs, launcher, out)
    assert summary['busy'] == [runs[0].key] and not calls() and seen[0]['job_id'] == '4242'
    monkeypatch.setattr(L.SubmititLauncher, 'job_state', staticmethod(lambda e: 'COMPLETED'))
    summary = _session(runs, launcher, out)
    assert summary['done'] == [runs[0].key] and len(calls()) == 1


def test_multi_gpu_runs_go_through_torchrun(world):
    methods, out, _ = world
    run = build_plan(methods, out, names=['alpha'], configs=['alpha_sysu'])[0]
    cmd = L.worker_command(run, RUNNER, gpus_per_run=4)
    assert cmd[1:5] == ['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=4']
    assert cmd[5:7] == ['-m', 'harness.leaderboard.worker'] and cmd[-2:] == [
        '--launcher',
        'pytorch',
    ]
    assert json.loads(cmd[7])['work_dir'] == run.work_dir
    assert L.worker_command(run, RUNNER)[1:3] == ['-m', 'harness.leaderboard.worker']


def test_progress_eta_from_finished_durations():
    now = [0.0]
    stream = io.StringIO()
    p = Progress(4, parallel=1, stream=stream, clock=lambda: now[0])
    p.start('a')
    now[0] = 10.0
    p.finish('a', 'done')
    assert '[leaderboard 1/4] done a in 10s; ETA 30s' in stream.getvalue()
    p.start('b')
    now[0] = 15.0
    assert p.eta() == pytest.approx(25.0)  # 3 left x 10 s, 5 s of b already spent


# --- command line ------------------------------------------------------------------------------


def _cli(argv):
    from harness.cli import leaderboard as cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    return cli, parser.parse_args(['leaderboard', *argv])


def test_every_leaderboard_flag_is_a_plain_option_with_the_same_default():
    """The command line only parses: each flag of `vireid leaderboard` lands in a field of
    LeaderboardOptions (what harness.leaderboard plans and launches from), with the same default."""
    from dataclasses import fields

    from harness.leaderboard.options import LeaderboardOptions

    cli, args = _cli([])
    dests = set(vars(args)) - {'func', 'debug'}
    assert dests == {f.name for f in fields(LeaderboardOptions)}
    assert LeaderboardOptions.from_namespace(args) == LeaderboardOptions()


def test_cli_dry_run_and_demo_plan(world, capsys):
    methods, out, calls = world
    cli, args = _cli(['--out', str(out), '--demo', '--dry-run', '--methods', 'alpha'])
    assert cli.run(args, methods=methods) == 0
    printed = capsys.readouterr().out
    # the demo also scores the untrained network, after the training runs
    assert '2 runs under' in printed and 'alpha/alpha_demo_sysu/sysu ' in printed
    trained, untrained = 'alpha/alpha_demo_sysu/sysu ', 'alpha/alpha_demo_sysu/sysu-untrained '
    assert printed.index(trained) < printed.index(untrained)
    assert f'data_root={out}/data/sysu' in printed and not calls()
    cli, args = _cli(
        ['--out', str(out), '--demo', '--dry-run', '--methods', 'alpha', '--no-untrained']
    )
    cli.run(args, methods=methods)
    assert '1 runs under' in capsys.readouterr().out
    cli, args = _cli(['--out', str(out), '--dry-run', '--methods', 'alpha', '--gpus-per-run', '2'])
    cli.run(args, methods=methods)
    printed = capsys.readouterr().out
    assert (
        'regdb-split10' in printed
        and 'torch.distributed.run --standalone --nproc_per_node=2' in printed
    )


def test_cli_runs_prints_table_and_retry(world, capsys):
    methods, out, calls = world
    cli, args = _cli(
        [
            '--out',
            str(out),
            '--methods',
            'alpha,beta',
            '--kinds',
            'full',
            '--regdb-splits',
            '1,2',
            '--launcher',
            'inline',
            '--runner',
            RUNNER,
            '--reported',
            '',
            '--cfg-options',
            'train_cfg.max_epochs=2',
        ]
    )
    assert cli.run(args, methods=methods) == 1  # a failure is an error exit
    printed = capsys.readouterr().out
    assert '| Alpha' in printed and 'RegDB: 2 of 10 splits (1, 2)' in printed
    assert f'Tables written to {out}/tables/' in printed
    assert (
        f"vireid leaderboard --out {out} --reported '' --launcher inline --cfg-options "
        'train_cfg.max_epochs=2 --methods beta --configs beta_sysu --datasets sysu --kinds full'
    ) in printed
    assert (out / 'tables' / 'comparison.tex').exists() and (out / 'summary.json').exists()
    assert (out / 'tables' / 'cmc_sysu_all-single.png').exists()


def test_progress_shows_each_run_in_flight_from_its_progress_file(tmp_path):
    import json as _json

    now = [0.0]
    stream = io.StringIO()
    p = Progress(3, stream=stream, clock=lambda: now[0], interval_s=60, live=False)
    p.start('agw/agw_sysu/sysu', tmp_path)
    p.tick()
    assert 'epoch' not in stream.getvalue()  # nothing written yet, and too early
    (tmp_path / 'progress.json').write_text(
        _json.dumps(
            dict(stage='train', epoch=2, max_epochs=81, iter=40, iters_per_epoch=348, eta_s=7260)
        )
    )
    now[0] = 61.0
    p.tick()
    line = '[leaderboard 0/3] agw/agw_sysu/sysu: epoch 2/81, iter 40/348, ETA 2h01m'
    assert line in stream.getvalue()
    now[0] = 70.0
    p.tick()  # plain lines at most every interval_s
    assert stream.getvalue().count('ETA 2h01m') == 1


def test_progress_on_a_terminal_is_a_live_table(tmp_path):
    import json as _json

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    (tmp_path / 'progress.json').write_text(
        _json.dumps(
            dict(stage='train', epoch=2, max_epochs=81, iter=40, iters_per_epoch=348, eta_s=7260)
        )
    )
    stream = Terminal()
    p = Progress(3, stream=stream)
    assert p.live
    p.start('agw/agw_sysu/sysu', tmp_path)
    p.tick()
    p.finish('agw/agw_sysu/sysu', 'done')
    p.close()
    shown = stream.getvalue()
    assert 'epoch 2/81, iter 40/348, ETA 2h01m' in shown and 'run in flight' in shown
    assert '[leaderboard 1/3] done agw/agw_sysu/sysu' in shown


def test_cli_figures_draws_every_finished_run_and_fails_loudly(world, capsys):
    methods, out, calls = world
    cli, args = _cli(
        [
            '--out',
            str(out),
            '--methods',
            'alpha',
            '--configs',
            'alpha_sysu',
            '--launcher',
            'inline',
            '--runner',
            RUNNER,
            '--reported',
            '',
            '--no-plots',
            '--figures',
        ]
    )
    # The fake engine writes records but no config.py or checkpoint: every finished run is tried
    # and its failure is reported with the run named.
    assert cli.run(args, methods=methods) == 1
    printed = capsys.readouterr().out
    run_dir = out / 'runs' / 'alpha' / 'alpha_sysu' / 'sysu'
    assert read_record(run_dir / 'record.json')['status'] == 'done'
    assert f'figures of {run_dir} failed: {run_dir} has no config.py' in printed
