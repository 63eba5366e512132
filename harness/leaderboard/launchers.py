"""Where runs execute: in this process, in local subprocesses, or as submitit (Slurm) jobs.

Every launcher takes a list of :class:`RunSpec` and returns one outcome dict per run
(``key``, ``status`` in done/failed/busy, ``error``, ``wall_s``, ``record``, ``job_id``). A run's
own process writes its record; a run whose process dies without one (killed, out of memory) gets
a 'failed' record from the launcher, and the next leaderboard resumes it from its checkpoint.

Multi-GPU runs (``gpus_per_run > 1``) go through torchrun, one process per GPU::

    python -m torch.distributed.run --standalone --nproc_per_node N \
        -m harness.leaderboard.worker '<run json>' --launcher pytorch

the worker passes ``launcher='pytorch'`` to ``run_experiment`` (mmengine's Runner then joins the
process group torchrun set up) and only rank 0 takes the run's lock and writes records.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from harness.atomic import write_json_atomic
from harness.leaderboard.locks import Busy, FileLock
from harness.leaderboard.plan import RunSpec
from harness.leaderboard.progress import Progress
from harness.leaderboard.worker import (
    DEFAULT_RUNNER,
    EXIT_ALREADY_DONE,
    EXIT_BUSY,
    EXIT_DONE,
    execute,
    failure_record,
)
from harness.records import read_record

LOG_NAME = 'leaderboard.log'
JOBS_NAME = 'jobs.json'


def worker_command(
    run: RunSpec,
    runner: str = DEFAULT_RUNNER,
    rerun: bool = False,
    gpus_per_run: int = 1,
    python: str = sys.executable,
) -> list[str]:
    """The command line that runs ``run`` in its own process (through torchrun for several GPUs)."""
    spec = json.dumps(run.to_dict(), sort_keys=True)
    tail = ['-m', 'harness.leaderboard.worker', spec, '--runner', runner] + (
        ['--rerun'] if rerun else []
    )
    if gpus_per_run > 1:
        return [
            python,
            '-m',
            'torch.distributed.run',
            '--standalone',
            f'--nproc_per_node={gpus_per_run}',
            *tail,
            '--launcher',
            'pytorch',
        ]
    return [python, *tail]


def _cpus() -> int:
    """CPUs this process may use (taskset / cgroups), not all the machine has."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _worker_env(threads: int | None) -> dict:
    env = dict(os.environ)
    # The package may not be installed: make the worker import this very tree.
    root = str(Path(__file__).resolve().parents[2])
    env['PYTHONPATH'] = os.pathsep.join([root, *filter(None, [env.get('PYTHONPATH')])])
    if threads and 'OMP_NUM_THREADS' not in env:
        env['OMP_NUM_THREADS'] = str(threads)
    return env


def _record_death(run: RunSpec, returncode: int) -> str:
    """Write a 'failed' record for a worker that died without writing one; returns the error
    text."""
    why = (
        f'worker killed by signal {-returncode}'
        if returncode < 0
        else f'worker exited with code {returncode}'
    )
    error = f'{why} (see {Path(run.work_dir) / LOG_NAME}); a rerun resumes from the last checkpoint'
    try:
        with FileLock(run.lock_path):
            write_json_atomic(
                run.record_path, failure_record(run, RuntimeError(error), started='', tb='')
            )
    except Busy:  # another leaderboard took the run over meanwhile: its record will tell
        pass
    return error


def _record_error(record: dict) -> str | None:
    err = record.get('error')
    return f'{err.get("type")}: {err.get("message")}' if isinstance(err, dict) else None


def report(progress: Progress, out: dict) -> None:
    """One finished outcome on the progress display (busy and already-done runs are skips)."""
    if out['status'] == 'busy':
        progress.running.pop(out['key'], None)
        progress.skip(out['key'], 'busy: another leaderboard holds it')
    elif out.get('already'):
        progress.running.pop(out['key'], None)
        progress.skip(out['key'], 'done by another leaderboard meanwhile')
    else:
        progress.finish(out['key'], out['status'], out['error'])


def _outcome_from_exit(run: RunSpec, returncode: int, started_at: float) -> dict:
    """Outcome of a worker process from its exit code and the record it left."""
    out = {
        'key': run.key,
        'status': 'busy',
        'error': None,
        'wall_s': time.time() - started_at,
        'record': str(run.record_path),
        'job_id': None,
    }
    if returncode == EXIT_BUSY:
        return out
    record = read_record(run.record_path) or {}
    try:  # a record older than this worker is a previous attempt's (or another leaderboard's)
        fresh = run.record_path.stat().st_mtime >= started_at - 1
    except FileNotFoundError:
        fresh = False
    if returncode in (EXIT_DONE, EXIT_ALREADY_DONE) and record.get('status') == 'done':
        out.update(status='done', already=returncode == EXIT_ALREADY_DONE)
        return out
    out['status'] = 'failed'
    if fresh and record.get('status') == 'failed':
        out['error'] = _record_error(record) or 'failed (no error in the record)'
    else:
        out['error'] = _record_death(run, returncode)
    return out


class InlineLauncher:
    """Runs in this process, one after the other (debugging; a hard crash stops the leaderboard)."""

    parallel = 1

    def __init__(self, runner: str | Callable = DEFAULT_RUNNER, rerun: bool = False):
        self.runner, self.rerun = runner, rerun

    def launch(self, runs: Iterable[RunSpec], progress: Progress) -> list[dict]:
        outcomes = []
        for run in runs:
            progress.start(run.key, run.work_dir)
            out = {**execute(run, runner=self.runner, rerun=self.rerun), 'job_id': None}
            report(progress, out)
            outcomes.append(out)
        return outcomes


class LocalLauncher:
    """Each run in its own ``python -m harness.leaderboard.worker`` process, ``jobs`` at a time."""

    def __init__(
        self,
        jobs: int = 1,
        runner: str = DEFAULT_RUNNER,
        rerun: bool = False,
        gpus_per_run: int = 1,
        poll_s: float = 0.2,
    ):
        if jobs < 1:
            raise ValueError(f'--jobs must be at least 1, got {jobs}')
        self.parallel, self.runner, self.rerun = jobs, runner, rerun
        self.gpus_per_run, self.poll_s = gpus_per_run, poll_s

    def launch(self, runs: Iterable[RunSpec], progress: Progress) -> list[dict]:
        queue = list(runs)
        threads = max(1, _cpus() // self.parallel)
        env = _worker_env(threads)
        running: dict[str, tuple[RunSpec, subprocess.Popen, float, object]] = {}
        outcomes: dict[str, dict] = {}
        order = [r.key for r in queue]
        restore = _sigterm_as_interrupt()
        try:
            while queue or running:
                while queue and len(running) < self.parallel:
                    run = queue.pop(0)
                    Path(run.work_dir).mkdir(parents=True, exist_ok=True)
                    log = open(Path(run.work_dir) / LOG_NAME, 'ab')
                    cmd = worker_command(run, self.runner, self.rerun, self.gpus_per_run)
                    progress.start(run.key, run.work_dir)
                    # A new session: a Ctrl-C in the terminal reaches the leaderboard, which then
                    # stops its workers itself (they resume next time).
                    proc = subprocess.Popen(
                        cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
                    )
                    running[run.key] = (run, proc, time.time(), log)
                for key, (run, proc, t0, log) in list(running.items()):
                    rc = proc.poll()
                    if rc is None:
                        continue
                    log.close()
                    del running[key]
                    out = _outcome_from_exit(run, rc, t0)
                    report(progress, out)
                    outcomes[key] = out
                if running:
                    progress.tick()
                    time.sleep(self.poll_s)
        finally:
            for _run, proc, _, log in running.values():
                _stop(proc)
                log.close()
            restore()
        return [outcomes[k] for k in order if k in outcomes]


def _sigterm_as_interrupt() -> Callable[[], None]:
    """Turn SIGTERM (e.g. `kill`, a Slurm pre-emption) into KeyboardInterrupt so that the workers
    are stopped too; returns the function that restores the previous handler."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        raise KeyboardInterrupt(f'signal {signum}')

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _stop(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """Stop a worker we started (its whole process group, torchrun children included)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def run_distributed(run: dict, runner: str, rerun: bool, gpus_per_run: int) -> dict:
    """A submitit job body for a multi-GPU run: torchrun the worker, then read the record."""
    spec = RunSpec.from_dict(run)
    t0 = time.time()
    with open(Path(spec.work_dir) / LOG_NAME, 'ab') as log:
        rc = subprocess.call(
            worker_command(spec, runner, rerun, gpus_per_run),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_worker_env(None),
        )
    return _outcome_from_exit(spec, rc, t0)


class SubmissionError(RuntimeError):
    """sbatch refused a job (a bad partition, GPU request, account, ...)."""


def parse_sbatch_args(text: str | None) -> dict:
    """``'--account=proj --qos=high --exclusive'`` -> submitit's ``slurm_additional_parameters``.

    Each token is ``--name=value`` or a bare ``--flag``; short options (``-A proj``) and
    ``--name value`` pairs are refused: they cannot be told apart from a flag and a stray word.
    """
    import shlex

    params: dict = {}
    for tok in shlex.split(text or ''):
        name, eq, value = tok.partition('=')
        if not name.startswith('--') or len(name) < 3 or (eq and not value):
            raise ValueError(
                f'--sbatch-args: cannot read {tok!r}; give long sbatch options as '
                f'--name=value or --flag, e.g. '
                f'--sbatch-args="--account=proj --qos=high"'
            )
        params[name[2:]] = value if eq else True
    return params


def _sbatch_hint(message: str, gpus_per_run: int, partition: str | None) -> str:
    if 'gres' in message.lower() and gpus_per_run:
        where = f'partition {partition!r}' if partition else 'the default partition'
        return (
            f'{where} offers no GPUs for --gpus-per-run {gpus_per_run}: pass '
            f'--gpus-per-run 0 to train on its CPUs, or --partition NAME of a GPU partition '
            f'(sinfo -o "%P %G" lists them)'
        )
    if 'partition' in message.lower():
        return 'check --partition (sinfo lists the partitions)'
    return 'check --partition, --gpus-per-run, --cpus-per-run, --time-min and --sbatch-args'


class SubmititLauncher:
    """One submitit job per run (Slurm on a cluster; 'local' or 'debug' executors for tests).

    Job ids go into ``OUT/jobs.json`` at submission and into each record's ``provenance.job_id``.
    On Slurm the jobs are followed with :class:`harness.leaderboard.slurm.JobStates` (sacct, or
    squeue where the cluster keeps no accounting), so a job that ends without a result
    (cancelled, timed out, killed) is noticed within ``poll_s`` seconds and recorded as failed;
    the next leaderboard resumes it from its last checkpoint.
    """

    def __init__(
        self,
        folder: str | Path,
        jobs_file: str | Path,
        cluster: str = 'slurm',
        partition: str | None = None,
        gpus_per_run: int = 1,
        time_min: int = 2880,
        cpus_per_run: int | None = None,
        runner: str = DEFAULT_RUNNER,
        rerun: bool = False,
        lock: Callable[[], FileLock] | None = None,
        sbatch_args: dict | None = None,
        poll_s: float = 5.0,
        end_grace_s: float = 120.0,
    ):
        if importlib.util.find_spec('submitit') is None:
            raise RuntimeError("--launcher slurm needs submitit: pip install 'vireid-bench[slurm]'")
        if cluster == 'slurm' and shutil.which('sbatch') is None:
            raise RuntimeError(
                '--launcher slurm needs Slurm (sbatch is not on PATH here); '
                'use --launcher local on this machine'
            )
        self.folder, self.jobs_file, self.cluster = Path(folder), Path(jobs_file), cluster
        self.partition, self.gpus_per_run, self.time_min = partition, gpus_per_run, time_min
        self.cpus_per_run, self.runner, self.rerun = cpus_per_run, runner, rerun
        self.lock, self.sbatch_args = lock, dict(sbatch_args or {})
        self.poll_s, self.end_grace_s = poll_s, end_grace_s
        self.parallel = 10**6  # the scheduler decides

    def executor(self):
        import submitit

        ex = submitit.AutoExecutor(folder=str(self.folder), cluster=self.cluster)
        params: dict = dict(
            timeout_min=self.time_min, name='vireid-leaderboard', nodes=1, tasks_per_node=1
        )
        if self.gpus_per_run:
            params['gpus_per_node'] = self.gpus_per_run
        if self.cpus_per_run:
            params['cpus_per_task'] = self.cpus_per_run
        if self.cluster == 'slurm':
            # Torch would start a thread per core of the node; a job owns only its allocation.
            params['slurm_setup'] = [
                'export OMP_NUM_THREADS=${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}'
            ]
            if self.partition:
                params['slurm_partition'] = self.partition
            if self.sbatch_args:
                params['slurm_additional_parameters'] = dict(self.sbatch_args)
        ex.update_parameters(**params)
        return ex

    def _save_jobs(self, entries: dict) -> None:
        lock = (
            self.lock()
            if self.lock
            else FileLock(self.jobs_file.with_suffix('.lock'), blocking=True)
        )
        with lock:
            try:
                current = json.loads(self.jobs_file.read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                current = {}
            current.update(entries)
            write_json_atomic(self.jobs_file, current)

    @staticmethod
    def job_state(entry: dict) -> str | None:
        """Scheduler state of a job an earlier leaderboard submitted and did not see end, if
        known."""
        if entry.get('cluster') != 'slurm' or entry.get('state') != 'SUBMITTED':
            return None
        from harness.leaderboard.slurm import job_states

        state = job_states([entry['job_id']]).get(str(entry['job_id']))
        return None if state in (None, 'UNKNOWN') else state

    def _entry(self, run: RunSpec, job, submitted: str, state: str) -> dict:
        return {
            'job_id': str(job.job_id),
            'cluster': self.cluster,
            'submitted': submitted,
            'work_dir': run.work_dir,
            'submitit_folder': str(self.folder),
            'state': state,
        }

    def _submit(self, ex, run: RunSpec):
        from submitit.core.utils import FailedJobError

        try:
            if self.gpus_per_run > 1:
                return ex.submit(
                    run_distributed, run.to_dict(), self.runner, self.rerun, self.gpus_per_run
                )
            return ex.submit(execute, run.to_dict(), self.runner, self.rerun)
        except FailedJobError as err:
            message = str(err).strip() or type(err).__name__
            hint = _sbatch_hint(message, self.gpus_per_run, self.partition)
            raise SubmissionError(
                f'sbatch refused the job of {run.key}: {message}\n{hint}'
            ) from None

    def launch(self, runs: Iterable[RunSpec], progress: Progress) -> list[dict]:
        from harness.leaderboard.slurm import is_active

        runs = list(runs)
        ex = self.executor()
        try:
            known = json.loads(self.jobs_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            known = {}
        jobs, outcomes = [], {}
        now = time.strftime('%Y-%m-%dT%H:%M:%S%z')
        try:
            for run in runs:
                # A job still queued from an earlier leaderboard (killed while waiting) is not
                # submitted twice.
                state = self.job_state(known[run.key]) if run.key in known else None
                if is_active(state):
                    job_id = known[run.key]['job_id']
                    outcomes[run.key] = {
                        'key': run.key,
                        'status': 'busy',
                        'wall_s': 0.0,
                        'record': str(run.record_path),
                        'job_id': job_id,
                        'error': f'queued as job {job_id} ({state})',
                    }
                    progress.skip(run.key, f'busy: already queued as job {job_id} ({state})')
                    continue
                Path(run.work_dir).mkdir(parents=True, exist_ok=True)
                jobs.append((run, self._submit(ex, run)))
                progress.start(run.key, run.work_dir)
        finally:  # what was submitted is known to the next leaderboard, even after an error
            self._save_jobs({run.key: self._entry(run, job, now, 'SUBMITTED') for run, job in jobs})
        wait = self._wait_slurm if self.cluster == 'slurm' else self._wait_submitit
        for run, job, out in wait(jobs):
            out['job_id'] = str(job.job_id)
            report(progress, out)
            outcomes[run.key] = out
        self._save_jobs(
            {run.key: self._entry(run, job, now, outcomes[run.key]['status']) for run, job in jobs}
        )
        return [outcomes[r.key] for r in runs if r.key in outcomes]

    @staticmethod
    def _result(run: RunSpec, job) -> dict:
        try:
            return dict(job.result())
        except Exception as err:  # the job itself died (time limit, node failure, ...)
            return {
                'key': run.key,
                'status': 'failed',
                'wall_s': 0.0,
                'record': str(run.record_path),
                'error': _record_death(run, 1)
                + f'; submitit: {type(err).__name__}: {str(err)[:300]}',
            }

    def _wait_submitit(self, jobs: list):
        """submitit's own polling (its 'local' and 'debug' executors)."""
        import submitit

        by_job = {id(job): run for run, job in jobs}
        for job in submitit.helpers.as_completed([j for _, j in jobs]):
            run = by_job[id(job)]
            yield run, job, self._result(run, job)

    def _wait_slurm(self, jobs: list):
        """Poll all jobs with one scheduler query per round until each has a result or has ended."""
        from harness.leaderboard.slurm import JobStates, is_active

        states = JobStates()
        pending = {str(job.job_id): (run, job) for run, job in jobs}
        ended_at: dict[str, float] = {}
        while pending:
            current = states(list(pending))
            for job_id, (run, job) in list(pending.items()):
                if job.paths.result_pickle.exists():
                    out = self._result(run, job)
                else:
                    state = current.get(job_id, 'UNKNOWN')
                    if is_active(state) or state == 'UNKNOWN':
                        continue
                    # Ended without a result: cancelled, timed out or killed (or a result still on
                    # its way through a slow shared file system: wait for it a little).
                    first = ended_at.setdefault(job_id, time.monotonic())
                    out = self._ended_without_result(run, job_id, state, time.monotonic() - first)
                    if out is None:
                        continue
                del pending[job_id]
                yield run, job, out
            if pending:
                time.sleep(self.poll_s)

    def _ended_without_result(
        self, run: RunSpec, job_id: str, state: str, waited: float
    ) -> dict | None:
        """The outcome of a job that ended without a result, or None to look again later.

        A cancelled job's processes outlive its state change by Slurm's KillWait; its 'failed'
        record is written once they are gone (the run lock is free again) or after ``end_grace_s``.
        """
        if state == 'COMPLETED' and waited < self.end_grace_s:
            return None  # the result file may lag behind on a shared file system
        why = f'Slurm job {job_id} ended {state} without a result'
        record = read_record(run.record_path) or {}
        if record.get('status') == 'done' and record.get('provenance', {}).get('job_id') == job_id:
            return {
                'key': run.key,
                'status': 'done',
                'wall_s': 0.0,
                'record': str(run.record_path),
                'error': None,
            }
        try:
            with FileLock(run.lock_path):
                error = RuntimeError(f'{why}; a rerun resumes from the last checkpoint')
                failed = failure_record(run, error, started='', tb='')
                failed['provenance']['job_id'] = job_id
                write_json_atomic(run.record_path, failed)
        except Busy:
            if waited < self.end_grace_s:
                return None  # its processes still run (KillWait): look again
        return {
            'key': run.key,
            'status': 'failed',
            'wall_s': 0.0,
            'record': str(run.record_path),
            'error': f'{why} (cancelled, timed out or killed; its log: '
            f'{self.folder}/{job_id}_0_log.err); the next leaderboard resumes it '
            f'from its last checkpoint',
        }
