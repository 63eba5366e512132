"""Slurm job states and partitions from stand-in ``sacct``/``squeue``/``sinfo`` scripts.

These run anywhere; tests/slurm runs the same code against a real cluster where Slurm is installed.
The stand-ins answer like Slurm 22.05 on a cluster without accounting.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import threading
import time
from types import SimpleNamespace

import pytest

from harness.leaderboard import launchers as L
from harness.leaderboard.launch import resolve_gpus
from harness.leaderboard.plan import RunSpec
from harness.leaderboard.slurm import GONE, JobStates, describe, partition_has_gpus
from harness.records import read_record

FAKES = {
    'sacct': """#!/bin/sh
echo "sacct: error: Slurm accounting storage is disabled" >&2
exit 1
""",
    # States come from $FAKE_SLURM/states.json ({"id": "STATE"}); unknown ids are "invalid".
    'squeue': """#!/usr/bin/env python3
import json, os, sys
states = json.load(open(os.path.join(os.environ['FAKE_SLURM'], 'states.json')))
ids = next(a.split('=', 1)[1] for a in sys.argv if a.startswith('--jobs=')).split(',')
known = [i for i in ids if i in states]
for i in known:
    print(f'{i}|{states[i]}')
if len(known) < len(ids):
    print('slurm_load_jobs error: Invalid job id specified', file=sys.stderr)
sys.exit(0 if known else 1)
""",
    'sinfo': """#!/usr/bin/env python3
import json, os, sys
parts = json.load(open(os.path.join(os.environ['FAKE_SLURM'], 'partitions.json')))
part = next((a.split('=', 1)[1] for a in sys.argv if a.startswith('--partition=')), None)
if '--format=%P' in sys.argv:
    print('\\n'.join(p + ('*' if i == 0 else '') for i, p in enumerate(parts)))
elif part in parts:
    print(parts[part])
""",
    'sbatch': '#!/bin/sh\nexit 1\n',
}


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, text in FAKES.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv('PATH', f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')
    monkeypatch.setenv('FAKE_SLURM', str(tmp_path))

    def set_state(states: dict | None = None, partitions: dict | None = None) -> None:
        if states is not None:
            (tmp_path / 'states.json').write_text(json.dumps(states))
        if partitions is not None:
            (tmp_path / 'partitions.json').write_text(json.dumps(partitions))

    set_state({}, {'cpu': '(null)', 'gpu': 'gpu:a100:4(S:0-1)'})
    return set_state


def test_states_fall_back_to_squeue_once_sacct_fails(fake_slurm):
    fake_slurm({'11': 'RUNNING', '12': 'PENDING', '13': 'CANCELLED'})
    states = JobStates()
    assert states(['11', '12', '13', '99']) == {
        '11': 'RUNNING',
        '12': 'PENDING',
        '13': 'CANCELLED',
        '99': GONE,
    }
    assert states.use_sacct is False  # not asked again
    assert [describe(s) for s in ('PENDING', 'RUNNING', 'CANCELLED', GONE)] == [
        'queued (PENDING)',
        'running (RUNNING)',
        'ended (CANCELLED)',
        'ended (no longer known to Slurm)',
    ]


def test_partitions_with_and_without_gpus(fake_slurm):
    assert partition_has_gpus('gpu') is True
    assert partition_has_gpus('cpu') is False
    assert partition_has_gpus(None) is False  # the default partition (first, starred): cpu
    assert partition_has_gpus('nosuch') is None  # sinfo cannot say: no guess


def args(**kw) -> argparse.Namespace:
    base = dict(gpus_per_run=None, launcher='slurm', cluster='slurm', partition=None)
    return argparse.Namespace(**{**base, **kw})


def test_gpus_per_run_on_cpu_and_gpu_partitions(fake_slurm, capsys):
    assert resolve_gpus(args()) == 0
    assert 'offers no GPUs' in capsys.readouterr().err
    assert resolve_gpus(args(partition='gpu')) == 1
    assert resolve_gpus(args(partition='gpu', gpus_per_run=4)) == 4
    assert resolve_gpus(args(gpus_per_run=0)) == 0
    with pytest.raises(ValueError, match=r"partition 'cpu' offers no GPUs.*--gpus-per-run 0"):
        resolve_gpus(args(partition='cpu', gpus_per_run=1))
    assert resolve_gpus(args(launcher='local')) == 1


def test_sbatch_args_become_submitit_parameters():
    assert L.parse_sbatch_args('--account=proj --qos=high --exclusive') == {
        'account': 'proj',
        'qos': 'high',
        'exclusive': True,
    }
    assert L.parse_sbatch_args(None) == {}
    for bad in ('-A proj', '--account proj', '--qos='):
        with pytest.raises(ValueError, match='--sbatch-args: cannot read'):
            L.parse_sbatch_args(bad)


def test_a_cancelled_job_is_noticed_and_recorded_without_accounting(fake_slurm, tmp_path):
    run = RunSpec(
        method='toy',
        config='toy.py',
        dataset='regdb',
        split=1,
        kind='demo',
        label='Toy',
        row=None,
        work_dir=str(tmp_path / 'run'),
    )
    job = SimpleNamespace(job_id='21', paths=SimpleNamespace(result_pickle=tmp_path / 'none.pkl'))
    fake_slurm({'21': 'CANCELLED'})
    launcher = L.SubmititLauncher(tmp_path / 'submitit', tmp_path / 'jobs.json', poll_s=0.1)
    t0 = time.monotonic()
    ((got_run, got_job, out),) = list(launcher._wait_slurm([(run, job)]))
    assert time.monotonic() - t0 < 10 and got_job is job
    assert out['status'] == 'failed'
    assert 'Slurm job 21 ended CANCELLED without a result' in out['error']
    record = read_record(run.record_path)
    assert record['status'] == 'failed' and 'CANCELLED' in record['error']['message']
    assert record['provenance']['job_id'] == '21'
    # While its processes are stopping (COMPLETING) the launcher keeps waiting.
    job2 = SimpleNamespace(job_id='22', paths=SimpleNamespace(result_pickle=tmp_path / 'r.pkl'))
    fake_slurm({'22': 'COMPLETING'})
    launcher.poll_s = 0.05
    waiting = launcher._wait_slurm([(run, job2)])
    threading.Timer(0.5, fake_slurm, args=({'22': 'TIMEOUT'},)).start()
    ((_, _, out2),) = list(waiting)
    assert 'ended TIMEOUT' in out2['error']
