"""Leaderboards: every method x protocol as resumable, lockable runs, launched locally or on Slurm.

``options`` holds a command's options and the plan they select (``plan`` lists the runs,
``official`` adds the authors' checkpoints), ``locks`` guards each run directory, ``worker`` runs
one run, ``launch`` picks the launcher and ``launchers`` decide where workers run, ``session`` ties
them together, ``progress`` and ``cost`` report. The records themselves: :mod:`harness.records`.
"""

from harness.atomic import write_json_atomic
from harness.leaderboard.locks import FileLock
from harness.leaderboard.plan import RunSpec, build_plan, run_state
from harness.records import read_record

__all__ = ['FileLock', 'RunSpec', 'build_plan', 'read_record', 'run_state', 'write_json_atomic']
