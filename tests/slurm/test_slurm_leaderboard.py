"""``vireid leaderboard --launcher slurm`` against a real single-node Slurm (see conftest.py).

The cluster keeps no accounting, so ``sacct`` fails there as on many small clusters: job states
must come from ``squeue``. Runs are the demo AGW config on the small synthetic RegDB for four
epochs. The run that is cancelled after its first checkpoint pauses after each epoch
(``slow_epochs.py``), so that it is still training when SIGTERM arrives however fast the machine
is, and cannot finish in the seconds Slurm gives it between SIGTERM and SIGKILL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.leaderboard.slurm import GONE, JobStates

ROOT = Path(__file__).resolve().parents[2]
RUN_KEY = 'agw/agw_demo_regdb/regdb-split1'
LEADERBOARD = [
    'leaderboard',
    '--demo',
    '--methods',
    'agw',
    '--datasets',
    'regdb',
    '--launcher',
    'slurm',
    '--no-plots',
    '--reported',
    '',
    '--no-untrained',
    '--cfg-options',
    'train_cfg.max_epochs=4',
]


def vireid_argv(out: Path, regdb_root: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        '-m',
        'harness.cli',
        *LEADERBOARD,
        '--out',
        str(out),
        '--data-root-regdb',
        str(regdb_root),
        *extra,
    ]


# The engine of the cancelled run (importable by the job: its folder is on PYTHONPATH).
SLOW_RUNNER = 'slow_epochs:run_experiment'


def cli_env() -> dict:
    here = str(Path(__file__).resolve().parent)
    path = os.pathsep.join(filter(None, [str(ROOT), here, os.environ.get('PYTHONPATH')]))
    return {**os.environ, 'PYTHONPATH': path}


def vireid(
    out: Path, regdb_root: Path, *extra: str, timeout: float = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        vireid_argv(out, regdb_root, *extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
        cwd=out.parent,
    )


def record(out: Path) -> dict:
    return json.loads((out / 'runs' / RUN_KEY / 'record.json').read_text())


def job_entry(out: Path) -> dict:
    return json.loads((out / 'jobs.json').read_text())[RUN_KEY]


def plan_line(dry: subprocess.CompletedProcess) -> str:
    assert dry.returncode == 0, dry.stderr
    return next(line for line in dry.stdout.splitlines() if RUN_KEY in line)


@pytest.fixture(scope='module')
def finished(
    slurm_cluster, regdb_root, tmp_path_factory
) -> tuple[Path, subprocess.CompletedProcess]:
    """One uninterrupted leaderboard on the cluster (the reference for the resumed run)."""
    out = tmp_path_factory.mktemp('slurm-lb') / 'lb'
    out.parent.mkdir(exist_ok=True)
    return out, vireid(out, regdb_root)


def test_job_states_come_from_squeue_without_accounting(slurm_cluster, tmp_path):
    job = slurm_cluster.run(
        'sbatch', '--parsable', f'--output={tmp_path}/%j.out', '--wrap', 'sleep 120'
    ).stdout.strip()
    states = JobStates()
    slurm_cluster.wait_for(lambda: states([job])[job] == 'RUNNING', f'job {job} to run', timeout=30)
    assert states.use_sacct is False  # sacct: "Slurm accounting storage is disabled"
    slurm_cluster.run('scancel', job)
    slurm_cluster.wait_for(
        lambda: states([job])[job] == 'CANCELLED', f'job {job} to be cancelled', timeout=10
    )
    assert JobStates()(['987654']) == {'987654': GONE}


def test_gpus_on_a_cpu_partition_are_refused_before_submission(
    slurm_cluster, regdb_root, tmp_path, capsys
):
    from harness.cli import main

    out = tmp_path / 'lb'
    argv = vireid_argv(out, regdb_root)[3:]
    assert main([*argv, '--gpus-per-run', '1']) == 2
    err = capsys.readouterr().err
    assert 'the default partition (cpu) offers no GPUs' in err
    assert '--gpus-per-run 0' in err and 'Invalid generic resource' in err
    assert not (out / 'jobs.json').exists()
    # A partition sbatch refuses: its own message, what to check, nothing left queued.
    assert main([*argv, '--gpus-per-run', '0', '--partition', 'nosuch']) == 2
    err = capsys.readouterr().err
    assert f'sbatch refused the job of {RUN_KEY}' in err
    assert 'invalid partition' in err.lower() and 'check --partition' in err
    assert slurm_cluster.run('squeue', '--noheader').stdout.strip() == ''


def test_leaderboard_submits_runs_and_records_on_slurm(finished):
    out, done = finished
    assert done.returncode == 0, done.stdout + done.stderr
    # The default --gpus-per-run 1 would be refused on this CPU partition: 0 is taken, and said.
    assert 'offers no GPUs' in done.stderr and '--gpus-per-run 0' in done.stderr
    rec = record(out)
    entry = job_entry(out)
    assert rec['status'] == 'done' and rec['results']['v2t'] and rec['results']['t2v']
    assert rec['provenance']['job_id'] == entry['job_id'] and entry['state'] == 'done'
    assert 'done now: 1' in done.stdout
    assert (out / 'submitit' / f'{entry["job_id"]}_0_result.pkl').is_file()


def test_dry_run_shows_jobs_and_a_cancelled_run_resumes_from_its_checkpoint(
    slurm_cluster, regdb_root, finished, tmp_path
):
    out = tmp_path / 'lb'
    run_dir = out / 'runs' / RUN_KEY
    # Submitted on hold: the job waits in the queue until released.
    lb = subprocess.Popen(
        vireid_argv(out, regdb_root, '--sbatch-args=--hold', '--runner', SLOW_RUNNER),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        cwd=tmp_path,
    )
    try:
        job = slurm_cluster.wait_for(
            lambda: (out / 'jobs.json').is_file() and job_entry(out)['job_id'],
            'the leaderboard to submit',
            timeout=60,
        )
        assert re.search(
            rf'^\s+queued\s+{RUN_KEY}\s.* job {job}: queued \(PENDING\)$',
            plan_line(vireid(out, regdb_root, '--dry-run')),
        )
        slurm_cluster.run('scontrol', 'release', job)
        slurm_cluster.wait_for(
            lambda: slurm_cluster.job_state(job) == 'RUNNING', 'the job to run', timeout=30
        )
        assert re.search(
            rf' job {job}: running \(RUNNING\)$', plan_line(vireid(out, regdb_root, '--dry-run'))
        )

        slurm_cluster.wait_for(
            lambda: (run_dir / 'last_checkpoint').is_file(), 'the first checkpoint', timeout=300
        )
        slurm_cluster.run('scancel', job)
        cancelled_at = time.time()
        stdout, stderr = lb.communicate(timeout=300)
    finally:
        if lb.poll() is None:
            lb.kill()
            lb.communicate()
    # The job stopped at Slurm's SIGTERM and recorded the run as failed, with how to go on; the
    # leaderboard reported it at once.
    assert lb.returncode == 1, stdout + stderr
    assert (run_dir / 'record.json').stat().st_mtime - cancelled_at < 30
    assert 'the Slurm job was sent SIGTERM (scancel' in stdout, stdout + stderr
    assert 'a rerun resumes from the last checkpoint' in stdout, stdout + stderr
    failed = record(out)
    assert failed['status'] == 'failed' and failed['error']['type'] == 'Terminated'
    assert failed['provenance']['job_id'] == job
    checkpoint = (run_dir / 'last_checkpoint').read_text().strip()
    assert Path(checkpoint).name.startswith('epoch_')
    first_logs = set(run_dir.glob('*/*.log'))

    again = vireid(out, regdb_root)
    assert again.returncode == 0, again.stdout + again.stderr
    resumed = record(out)
    assert resumed['status'] == 'done' and resumed['provenance']['job_id'] != job
    # Resumed, not restarted: the new session trained only the epochs after the checkpoint ...
    (log,) = set(run_dir.glob('*/*.log')) - first_logs
    text = log.read_text()
    done_epochs = int(Path(checkpoint).stem.split('_')[1])
    assert f'resumed epoch: {done_epochs}' in text
    assert 'Epoch(train) [1]' not in text
    # ... and lost nothing: the scores are those of the uninterrupted run.
    reference = record(finished[0])
    assert resumed['results'] == reference['results']
