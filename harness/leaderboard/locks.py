"""The run locks, moved to :mod:`harness.locks` so that the engine locks a ``vireid train`` work
dir with the same lock file a leaderboard takes; these names stay importable from here."""

from harness.locks import LOCK_NAME, Busy, FileLock, is_locked

__all__ = ['LOCK_NAME', 'Busy', 'FileLock', 'is_locked']
