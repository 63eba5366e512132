"""The names this module held before records moved to :mod:`harness.records` and the run locks to
:mod:`harness.leaderboard.locks`, kept so that older imports still work; import from those two."""

from harness.leaderboard.locks import LOCK_NAME, Busy, FileLock, is_locked
from harness.records import RECORD_NAME, RECORD_SOURCES, find_records, read_record

__all__ = [
    'LOCK_NAME',
    'RECORD_NAME',
    'RECORD_SOURCES',
    'Busy',
    'FileLock',
    'find_records',
    'is_locked',
    'read_record',
]
