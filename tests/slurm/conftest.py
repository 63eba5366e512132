"""A real single-node Slurm cluster for the session: ``munged``, ``slurmctld`` and ``slurmd``.

Debian's ``slurm-wlm`` and ``munge`` packages (Slurm 22.05; ``.ci/run`` installs them) are
started as root in a private folder with their own munge key and socket, free TCP ports and a
minimal ``slurm.conf``: one node with this machine's CPUs, one partition without GPUs, no
accounting (so ``sacct`` fails, as on many small clusters), ``proctrack/linuxproc`` and
``task/none`` (no cgroups needed). Client commands find it through ``SLURM_CONF``. At the end every
job is cancelled and the three daemons are stopped by their process ids.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

DAEMONS = ('munged', 'slurmctld', 'slurmd')
CLIENTS = ('sbatch', 'squeue', 'sinfo', 'scancel', 'scontrol', 'srun')
NODE = 'vireid-node'
PARTITION = 'cpu'
# scancel's SIGTERM -> SIGKILL delay (real clusters use 30 s). A cancelled run needs it to record
# itself (unwind, find its last complete checkpoint, write record.json): 2 s was too short on a
# loaded 2-core machine, where the job was killed before it could say why.
KILL_WAIT_S = 15

SLURM_CONF = """\
ClusterName=vireidtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser={user}
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/munge.socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
KillWait={kill_wait}
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName={partition} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


@dataclass
class SlurmCluster:
    root: Path
    conf: Path
    partition: str
    node: str

    def run(
        self, *cmd: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess:
        """A Slurm client command against this cluster."""
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, 'SLURM_CONF': str(self.conf)},
        )
        if check and done.returncode:
            raise AssertionError(
                f'{" ".join(cmd)} exited {done.returncode}: {done.stderr}\n{self.logs()}'
            )
        return done

    def logs(self, lines: int = 20) -> str:
        out = []
        for log in sorted((self.root / 'log').glob('*.log')) + [self.root / 'munge' / 'munged.log']:
            if log.is_file():
                tail = log.read_text(errors='replace').splitlines()[-lines:]
                out.append(f'--- {log.name}\n' + '\n'.join(tail))
        return '\n'.join(out)

    def wait_for(self, predicate, what: str, timeout: float = 60, poll: float = 0.5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(poll)
        raise AssertionError(f'timed out after {timeout:.0f} s waiting for {what}\n{self.logs()}')

    def job_state(self, job_id: str) -> str:
        out = self.run(
            'squeue', '--noheader', '--states=all', '--format=%T', f'--jobs={job_id}', check=False
        ).stdout.strip()
        return out or 'GONE'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen, grace_s: float = 10) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope='session')
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory):
    missing = [c for c in DAEMONS + CLIENTS if shutil.which(c) is None]
    if missing:
        pytest.skip(
            f'Slurm is not installed here ({", ".join(missing)} not on PATH): '
            f'`apt-get install slurm-wlm munge` (what .ci/run does) enables the '
            f'real-cluster tests'
        )
    if os.geteuid() != 0:
        pytest.skip(
            'the single-node test cluster starts slurmd, which launches jobs, as root; '
            'run the tests as root (as .ci/run does in its container)'
        )
    root = tmp_path_factory.mktemp('slurm')
    for sub in ('munge', 'state', 'spool', 'log'):
        (root / sub).mkdir(mode=0o700)
    key = root / 'munge' / 'munge.key'
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    conf = root / 'slurm.conf'
    conf.write_text(
        SLURM_CONF.format(
            host=socket.gethostname().split('.')[0],
            ctld_port=_free_port(),
            d_port=_free_port(),
            user='root',
            root=root,
            kill_wait=KILL_WAIT_S,
            node=NODE,
            cpus=os.cpu_count() or 1,
            partition=PARTITION,
        )
    )
    cluster = SlurmCluster(root, conf, PARTITION, NODE)
    procs: list[subprocess.Popen] = []
    previous_conf = os.environ.get('SLURM_CONF')
    os.environ['SLURM_CONF'] = str(conf)

    def start(*cmd: str) -> None:
        with open(root / 'log' / f'{Path(cmd[0]).name}.stdout', 'wb') as out:
            procs.append(
                subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            )

    try:
        # Foreground daemons (-F / -D): their pids are ours to stop.
        start(
            'munged',
            '-F',
            '--force',
            f'--key-file={key}',
            f'--socket={root}/munge/munge.socket',
            f'--pid-file={root}/munge/munged.pid',
            f'--log-file={root}/munge/munged.log',
            f'--seed-file={root}/munge/munged.seed',
        )
        cluster.wait_for(lambda: (root / 'munge' / 'munge.socket').exists(), 'munged', timeout=20)
        start('slurmctld', '-D', '-f', str(conf))
        start('slurmd', '-D', '-f', str(conf), '-N', NODE)
        cluster.wait_for(
            lambda: (
                cluster.run(
                    'sinfo', '--noheader', f'--nodes={NODE}', '--format=%T', check=False
                ).stdout.strip()
                == 'idle'
            ),
            'the node to come up idle',
            timeout=60,
        )
        yield cluster
    finally:
        try:
            if procs and procs[-1].poll() is None:
                cluster.run('scancel', f'--partition={PARTITION}', check=False)

                def queue_empty() -> bool:
                    return not cluster.run('squeue', '--noheader', check=False).stdout.strip()

                cluster.wait_for(queue_empty, 'the cancelled jobs to leave', timeout=30)
        finally:
            for proc in reversed(procs):
                _stop(proc)
            if previous_conf is None:
                os.environ.pop('SLURM_CONF', None)
            else:
                os.environ['SLURM_CONF'] = previous_conf
