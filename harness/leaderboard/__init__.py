"""Leaderboards: every method x protocol as resumable, lockable runs, launched locally or on Slurm.

``plan`` lists the runs, ``records`` holds the atomic file IO and locks, ``worker`` runs one run,
``launchers`` decide where workers run, ``session`` ties them together, ``progress`` reports.
"""

from harness.atomic import write_json_atomic
from harness.leaderboard.locks import FileLock
from harness.leaderboard.plan import RunSpec, build_plan, run_state
from harness.records import read_record

__all__ = ['FileLock', 'RunSpec', 'build_plan', 'read_record', 'run_state', 'write_json_atomic']
