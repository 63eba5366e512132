"""Run one leaderboard run, in whatever process the launcher chose.

``execute`` is what every launcher ends in: in this process, in a ``python -m
harness.leaderboard.worker RUN_JSON`` subprocess (local launcher) or in a submitit job (Slurm).
It takes the run's lock, calls the engine (which resumes from ``last_checkpoint``) and makes sure a
record exists afterwards: the engine's own, or a 'failed' one written here when the engine could
not even start. It never raises for a failing run, so a submitit job never ends in an exception.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import importlib
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from harness.atomic import write_json_atomic
from harness.errors import Interrupted, StopSignal
from harness.leaderboard.locks import Busy, FileLock
from harness.leaderboard.plan import RUN_SPEC_NAME, RunSpec, config_change
from harness.records import (
    create_record,
    error_info,
    read_record,
    set_aside,
    write_record,
)

DEFAULT_RUNNER = 'harness.engine.run:run_experiment'
# Runs that score a model without training it (RunSpec.source other than 'reproduced').
DEFAULT_SCORER = 'harness.engine.run:score_run'
# The authors' released checkpoints: fetched, checked and converted, then scored like the others.
OFFICIAL_SCORER = 'harness.official:score_official'
EXIT_DONE, EXIT_FAILED, EXIT_BUSY = 0, 1, 75  # 75 = EX_TEMPFAIL: try again later
EXIT_ALREADY_DONE = 3  # done by another leaderboard: nothing was run


def resolve_runner(runner: str | Callable) -> Callable:
    """``'package.module:function'`` -> the function (a string crosses process boundaries)."""
    if callable(runner):
        return runner
    module, _, attr = runner.partition(':')
    if not attr:
        raise ValueError(f'runner {runner!r} must look like "package.module:function"')
    return getattr(importlib.import_module(module), attr)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')


def _job_id() -> str | None:
    """The scheduler's id of the job this process runs in, if any."""
    try:
        import submitit

        env = submitit.JobEnvironment()
        return str(env.job_id)
    except Exception:  # not inside a submitit job
        pass
    return os.environ.get('SLURM_JOB_ID')


def failure_record(run: RunSpec, err: BaseException, started: str, tb: str | None = None) -> dict:
    """A record for a run whose engine did not write one (it failed before it could)."""
    return create_record(
        status='failed',
        source=run.source,
        method=run.method,
        method_title=run.label,
        config=run.config,
        config_hash=None,
        entry={'method': run.method, 'kind': run.kind, 'label': run.label, 'row': run.row},
        dataset=run.dataset,
        split=run.split,
        results={},
        provenance={
            'started': started,
            'finished': _now(),
            'host': socket.gethostname(),
            'job_id': _job_id(),
        },
        work_dir=run.work_dir,
        checkpoint=None,
        error=error_info(err, tb),
    )


def execute(
    run: RunSpec | dict,
    runner: str | Callable = DEFAULT_RUNNER,
    rerun: bool = False,
    launcher: str | None = None,
) -> dict:
    """Run ``run`` under its lock; returns ``{'key', 'status', 'error', 'wall_s', 'record'}``.

    status is 'done', 'failed' or 'busy' (another process holds the run); ``already: True`` marks
    a run found done (by another leaderboard) once its lock was taken.
    """
    if isinstance(run, dict):
        run = RunSpec.from_dict(run)
    work_dir = Path(run.work_dir)
    outcome = {
        'key': run.key,
        'status': 'busy',
        'error': None,
        'wall_s': 0.0,
        'record': str(run.record_path),
    }
    # Under torchrun only rank 0 guards the run; the other ranks follow it.
    lead_rank = int(os.environ.get('RANK', '0')) == 0
    lock = FileLock(run.lock_path)
    if lead_rank:
        try:
            lock.acquire()
        except Busy:
            return outcome
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
        record = read_record(run.record_path)
        changed = config_change(run, record) if record else None
        if changed and not rerun:
            # The leaderboard refuses such runs before it starts; this is the guard for a worker
            # started otherwise: never resume or report as done a run of another config.
            outcome.update(
                status='failed',
                error=f'{work_dir} holds a run of another config ({changed}); --rerun trains '
                'it again with this one (the old run is kept aside under superseded/)',
            )
            return outcome
        if record and record.get('status') == 'done' and not rerun:
            outcome.update(
                status='done', already=True
            )  # finished by another leaderboard since we planned
            return outcome
        if lead_rank:
            if changed:
                set_aside(work_dir, record)
            write_json_atomic(work_dir / RUN_SPEC_NAME, {**run.to_dict(), 'runner': str(runner)})
            if rerun and run.record_path.exists():
                os.replace(run.record_path, work_dir / 'record.prev.json')
        started, t0 = _now(), time.monotonic()
        before = _mtime(run.record_path)
        kwargs = dict(
            config=run.config,
            work_dir=str(work_dir),
            data_root=run.data_root,
            cfg_options=run.run_options(),
            resume=not rerun,
        )
        if launcher:  # torchrun: the engine's Runner joins the process group
            kwargs['launcher'] = launcher
        engine = runner
        if not run.trains:  # scored only: the scorer takes the source (and given weights)
            kwargs.update(source=run.source, checkpoint=run.checkpoint)
            engine = DEFAULT_SCORER if runner == DEFAULT_RUNNER else runner
            if run.source == 'official':
                kwargs.update(trusted=run.trusted, downloads=run.downloads)
                engine = OFFICIAL_SCORER if runner == DEFAULT_RUNNER else runner
        try:
            if engine in (DEFAULT_RUNNER, DEFAULT_SCORER, OFFICIAL_SCORER):
                # Method packages register their models on import; the engine builds them by name.
                from harness.plugins import discover

                discover()
            with _stop_on_sigterm():
                resolve_runner(engine)(**kwargs)
        except Exception as err:  # the run failed; the leaderboard goes on
            tb = traceback.format_exc()
            outcome['wall_s'] = time.monotonic() - t0
            record = read_record(run.record_path)
            engine_wrote = (
                _mtime(run.record_path) != before and (record or {}).get('status') == 'failed'
            )
            if lead_rank and not engine_wrote:
                write_record(run.record_path, failure_record(run, err, started, tb))
            elif lead_rank:
                _stamp_job_id(run.record_path)
            cause = getattr(err, 'cause', None) or err  # RunFailed wraps what the run died of
            outcome.update(status='failed', error=f'{type(cause).__name__}: {cause}')
            if isinstance(err, Interrupted) and not isinstance(err.__cause__, Terminated):
                raise  # told to stop (and recorded): the leaderboard stops, not only this run
            return outcome
        outcome['wall_s'] = time.monotonic() - t0
        record = read_record(run.record_path)
        if record is None:
            err = RuntimeError(f'the engine returned but wrote no {run.record_path}')
            if lead_rank:
                write_record(run.record_path, failure_record(run, err, started, tb=''))
            outcome.update(status='failed', error=str(err))
            return outcome
        if lead_rank:
            record = _stamp_job_id(run.record_path) or record
        status = record.get('status')
        outcome['status'] = 'done' if status == 'done' else 'failed'
        if status != 'done':
            outcome['error'] = _error_text(record) or f'record status is {status!r}'
        return outcome
    finally:
        lock.release()


class Terminated(StopSignal):
    """The process was sent SIGTERM inside a Slurm job (the engine records the run as stopped and
    raises :class:`~harness.errors.Interrupted` from it)."""


@contextlib.contextmanager
def _stop_on_sigterm():
    """Inside a Slurm job, stop the run at SIGTERM (``scancel``, the time limit, preemption).

    Slurm sends SIGTERM, then SIGKILL after its ``KillWait``; submitit's job wrapper ignores
    SIGTERM, so the run would go on training until killed, possibly mid-checkpoint. Stopping at
    once records the run as failed (the next leaderboard resumes it from its last checkpoint).
    """
    in_main_thread = threading.current_thread() is threading.main_thread()
    if 'SLURM_JOB_ID' not in os.environ or not in_main_thread:
        yield
        return

    def stop(signum, frame):
        raise Terminated(
            'the Slurm job was sent SIGTERM (scancel, its time limit or preemption); '
            'a rerun resumes from the last checkpoint',
            'SIGTERM',
        )

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stamp_job_id(path: Path) -> dict | None:
    """Put the scheduler's job id into the record's provenance when the engine left it empty."""
    job_id = _job_id()
    record = read_record(path)
    if record is None or not job_id:
        return record
    prov = record.setdefault('provenance', {})
    if not prov.get('job_id'):
        prov['job_id'] = job_id
        write_record(path, record)
    return record


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def _error_text(record: dict) -> str | None:
    err = record.get('error')
    if isinstance(err, dict):
        return f'{err.get("type", "Error")}: {err.get("message", "")}'
    return str(err) if err else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m harness.leaderboard.worker',
        description='Run one leaderboard run (written by the leaderboard).',
    )
    parser.add_argument('spec', help=f'the run as JSON text, or the path of a {RUN_SPEC_NAME}')
    parser.add_argument(
        '--runner', default=None, help=f'engine function (default {DEFAULT_RUNNER})'
    )
    parser.add_argument('--rerun', action='store_true', help='train from scratch even if done')
    parser.add_argument('--launcher', default=None, help="'pytorch' under torchrun")
    args = parser.parse_args(argv)
    import json

    if args.spec.lstrip().startswith('{'):
        data = json.loads(args.spec)
    else:
        with open(args.spec, encoding='utf-8') as fh:
            data = json.load(fh)
    runner = args.runner or data.get('runner') or DEFAULT_RUNNER
    try:
        outcome = execute(
            RunSpec.from_dict(data), runner=runner, rerun=args.rerun, launcher=args.launcher
        )
    except (Interrupted, StopSignal) as err:  # recorded by the engine (or before it started)
        print(
            f'run {data.get("method")}/{Path(data.get("config", "")).stem}: {err}', file=sys.stderr
        )
        return err.exit_code
    if outcome['status'] == 'failed':
        print(f'run {outcome["key"]} failed: {outcome["error"]}', file=sys.stderr)
    if outcome.get('already'):
        return EXIT_ALREADY_DONE
    return {'done': EXIT_DONE, 'failed': EXIT_FAILED, 'busy': EXIT_BUSY}[outcome['status']]


if __name__ == '__main__':
    sys.exit(main())
