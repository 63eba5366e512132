"""Asking Slurm about jobs and partitions, on clusters with or without job accounting.

submitit reads job states from ``sacct``, which only answers where Slurm's accounting storage is
configured; elsewhere it fails ("Slurm accounting storage is disabled") and a job that was
cancelled or killed would never be seen to end. Here ``sacct`` is asked first and, for every job
it does not answer, ``squeue --states=all``, which lists pending, running and recently finished
jobs (the controller keeps finished ones for ``MinJobAge``, 300 s by default). A job neither knows
has left the controller's memory: it has ended.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable

# Job states (``squeue --states`` names) in which the job may still start or is running.
# fmt: off
ACTIVE_STATES = frozenset({
    'PENDING', 'CONFIGURING', 'RUNNING', 'COMPLETING', 'REQUEUED', 'REQUEUE_FED', 'REQUEUE_HOLD',
    'RESIZING', 'SUSPENDED', 'STOPPED', 'SIGNALING', 'STAGE_OUT', 'RESV_DEL_HOLD', 'SPECIAL_EXIT',
})
# fmt: on
# A job whose state is not ACTIVE has ended; GONE marks one the scheduler no longer knows.
GONE = 'GONE'
QUEUED = frozenset(
    {'PENDING', 'REQUEUED', 'REQUEUE_FED', 'REQUEUE_HOLD', 'CONFIGURING', 'RESV_DEL_HOLD'}
)


def _call(cmd: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess | None:
    """Run a Slurm client command; None when it is missing or hangs (controller unreachable)."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None


def _parse(stdout: str, wanted: set[str]) -> dict[str, str]:
    """``ID|STATE ...`` lines -> {id: first word of the state} for the ``wanted`` ids."""
    out = {}
    for line in stdout.splitlines():
        job_id, _, state = line.strip().partition('|')
        # sacct writes 'CANCELLED by 0'; array tasks and steps ('12.batch') are not asked for.
        if job_id in wanted and state:
            out[job_id] = state.split()[0].rstrip('+')
    return out


def sacct_states(job_ids: Iterable[str]) -> dict[str, str] | None:
    """States from the accounting database; None when ``sacct`` does not answer."""
    ids = sorted({str(j) for j in job_ids})
    if not ids:
        return {}
    done = _call(
        [
            'sacct',
            '--noheader',
            '--allocations',
            '--parsable2',
            '--format=JobID,State',
            f'--jobs={",".join(ids)}',
        ]
    )
    if done is None or done.returncode != 0:
        return None
    return _parse(done.stdout, set(ids))


def squeue_states(job_ids: Iterable[str]) -> dict[str, str] | None:
    """States the controller holds (pending, running, recently ended); None when ``squeue`` fails.

    A job the controller has forgotten is left out (``squeue`` then says "Invalid job id
    specified", and exits 1 when no asked job is known).
    """
    ids = sorted({str(j) for j in job_ids})
    if not ids:
        return {}
    done = _call(
        ['squeue', '--noheader', '--states=all', '--format=%i|%T', f'--jobs={",".join(ids)}']
    )
    if done is None:
        return None
    if done.returncode != 0 and 'Invalid job id' not in done.stderr:
        return None
    return _parse(done.stdout, set(ids))


class JobStates:
    """``{job id: state}`` for the asked jobs: a Slurm state name, ``GONE`` (ended and forgotten by
    the controller) or ``UNKNOWN`` (Slurm could not be asked).

    ``sacct`` is asked until it fails once (a cluster without accounting), then only ``squeue``.
    """

    def __init__(self, use_sacct: bool = True) -> None:
        self.use_sacct = use_sacct

    def __call__(self, job_ids: Iterable[str]) -> dict[str, str]:
        ids = sorted({str(j) for j in job_ids})
        states: dict[str, str] = {}
        if self.use_sacct and ids:
            answered = sacct_states(ids)
            if answered is None:
                self.use_sacct = False
            states.update(answered or {})
        missing = [j for j in ids if j not in states]
        if missing:
            queue = squeue_states(missing)
            for j in missing:
                states[j] = 'UNKNOWN' if queue is None else queue.get(j, GONE)
        return states


def job_states(job_ids: Iterable[str]) -> dict[str, str]:
    """One-off :class:`JobStates` query."""
    return JobStates()(job_ids)


def is_active(state: str | None) -> bool:
    return state in ACTIVE_STATES


def describe(state: str) -> str:
    """A state as a person reads it in the plan: 'queued (PENDING)', 'running (RUNNING)', ..."""
    if state in QUEUED:
        return f'queued ({state})'
    if state in ACTIVE_STATES:
        return f'running ({state})'
    if state == GONE:
        return 'ended (no longer known to Slurm)'
    if state == 'UNKNOWN':
        return 'state unknown (squeue/sacct did not answer)'
    return f'ended ({state})'


def default_partition() -> str | None:
    """The partition sbatch uses when none is named (``sinfo`` marks it with ``*``)."""
    done = _call(['sinfo', '--noheader', '--format=%P'])
    if done is None or done.returncode != 0:
        return None
    for name in done.stdout.split():
        if name.endswith('*'):
            return name[:-1]
    return None


def partition_gres(partition: str | None) -> list[str] | None:
    """The generic resources of the partition's nodes (``sinfo %G``); None when sinfo cannot say."""
    partition = partition or default_partition()
    if not partition:
        return None
    done = _call(['sinfo', '--noheader', f'--partition={partition}', '--format=%G'])
    if done is None or done.returncode != 0 or not done.stdout.strip():
        return None
    return sorted({g for g in done.stdout.split() if g and g != '(null)'})


def partition_has_gpus(partition: str | None) -> bool | None:
    """Whether any node of the partition offers ``gpu`` generic resources; None when unknown."""
    gres = partition_gres(partition)
    if gres is None:
        return None
    return any(g.split(':', 1)[0] == 'gpu' for g in gres)


def parse_time_limit(text: str) -> int | None:
    """Minutes of a Slurm time limit (``sinfo %l``: ``infinite``, ``D-HH:MM:SS``, ``HH:MM:SS``,
    ``MM:SS``, ``MM``); None for no limit or an unreadable one."""
    text = text.strip()
    if not text or text.lower() in ('infinite', 'unlimited', 'n/a'):
        return None
    days, _, clock = text.rpartition('-')
    try:
        parts = [int(p) for p in clock.split(':')]
        day_minutes = int(days) * 1440 if days else 0
    except ValueError:
        return None
    if len(parts) == 3:
        return day_minutes + parts[0] * 60 + parts[1] + (parts[2] > 0)
    if len(parts) == 2:
        return day_minutes + parts[0] + (parts[1] > 0)
    return day_minutes + parts[0] if len(parts) == 1 else None


def _gpu_count(gres: str) -> int:
    """GPUs per node of one ``sinfo %G`` entry list, e.g. ``gpu:a100:4(S:0-1),shard:8`` -> 4."""
    total = 0
    for item in gres.split(','):
        fields = item.split('(')[0].split(':')
        if fields[0] == 'gpu' and len(fields) > 1 and fields[-1].isdigit():
            total += int(fields[-1])
    return total


def partition_resources(partition: str | None) -> list[dict[str, int | None]] | None:
    """What one node of the partition offers, per group of alike nodes (``sinfo %G|%c|%l``):
    ``gpus``, ``cpus`` and ``time_min`` (the partition's time limit; None: no limit). None when
    sinfo cannot say."""
    partition = partition or default_partition()
    if not partition:
        return None
    done = _call(['sinfo', '--noheader', f'--partition={partition}', '--format=%G|%c|%l'])
    if done is None or done.returncode != 0 or not done.stdout.strip():
        return None
    out = []
    for line in done.stdout.splitlines():
        fields = line.strip().split('|')
        if len(fields) != 3:
            continue
        gres, cpus, limit = fields
        out.append(
            dict(
                gpus=_gpu_count(gres),
                cpus=int(cpus.rstrip('+')) if cpus.rstrip('+').isdigit() else None,
                time_min=parse_time_limit(limit),
            )
        )
    return out or None
