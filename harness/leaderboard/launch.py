"""The launcher a leaderboard command asks for (local, Slurm through submitit, or inline), the GPUs
each run gets, and the Slurm jobs earlier leaderboards submitted into the same folder."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from harness.leaderboard.options import LeaderboardOptions


def local_jobs(options: LeaderboardOptions) -> int:
    return options.jobs or (len(os.sched_getaffinity(0)) if options.demo else 1)


def make_launcher(options: LeaderboardOptions, out: Path):
    from harness.leaderboard.launchers import (
        InlineLauncher,
        LocalLauncher,
        SubmititLauncher,
        parse_sbatch_args,
    )

    gpus = resolve_gpus(options) if options.gpus_per_run is None else options.gpus_per_run
    if options.launcher == 'inline':
        return InlineLauncher(runner=options.runner, rerun=options.rerun)
    if options.launcher == 'local':
        return LocalLauncher(
            jobs=local_jobs(options), runner=options.runner, rerun=options.rerun, gpus_per_run=gpus
        )
    return SubmititLauncher(
        out / 'submitit',
        out / 'jobs.json',
        cluster=options.cluster,
        partition=options.partition,
        gpus_per_run=gpus,
        time_min=options.time_min,
        cpus_per_run=options.cpus_per_run,
        runner=options.runner,
        rerun=options.rerun,
        sbatch_args=parse_sbatch_args(options.sbatch_args),
    )


def resolve_gpus(options: LeaderboardOptions, stream=None) -> int:
    """GPUs per run: the option, else 1; on a Slurm partition without GPUs, 0 (said once on
    ``stream``), and an explicit request for GPUs there is refused before anything is submitted."""
    gpus = 1 if options.gpus_per_run is None else options.gpus_per_run
    if gpus < 0:
        raise ValueError(f'--gpus-per-run must be 0 or more, got {gpus}')
    if options.launcher == 'slurm' and options.cluster == 'slurm':
        from harness.leaderboard.slurm import default_partition, partition_gres, partition_has_gpus

        where = (
            f'partition {options.partition!r}'
            if options.partition
            else f'the default partition ({default_partition() or "unknown"})'
        )
        has_gpus = partition_has_gpus(options.partition)
        if has_gpus is False and options.gpus_per_run is None:
            gpus = 0
            print(
                f'[leaderboard] {where} offers no GPUs (sinfo lists no gpu gres): each run is '
                f'one CPU job (--gpus-per-run 0); name a GPU partition with --partition to train '
                f'on GPUs',
                file=stream or sys.stderr,
                flush=True,
            )
        elif has_gpus is False and gpus > 0:
            gres = ', '.join(partition_gres(options.partition) or []) or 'none'
            raise ValueError(
                f'--gpus-per-run {gpus}: {where} offers no GPUs (sinfo gres: '
                f'{gres}), so sbatch would refuse every '
                f'job ("Invalid generic resource (gres) specification"). Pass '
                f'--gpus-per-run 0 to train on its CPUs, or --partition NAME of a '
                f'partition with GPUs (sinfo -o "%P %G" lists them).'
            )
    return gpus


def submitted_jobs(out: Path, runs) -> dict[str, tuple[str, str]]:
    """``{run key: (job id, scheduler state)}`` for the Slurm jobs earlier leaderboards submitted
    into ``out`` and did not see end (one ``sacct``/``squeue`` call for all of them)."""
    try:
        known = json.loads((out / 'jobs.json').read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    keys = {r.key for r in runs}
    open_jobs = {
        k: str(e['job_id'])
        for k, e in known.items()
        if k in keys and e.get('cluster') == 'slurm' and e.get('state') == 'SUBMITTED'
    }
    if not open_jobs:
        return {}
    from harness.leaderboard.slurm import job_states

    states = job_states(open_jobs.values())
    return {k: (j, states.get(j, 'UNKNOWN')) for k, j in open_jobs.items()}
