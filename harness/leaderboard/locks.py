"""Per-run locks: non-blocking ``flock`` locks, one per run directory (the records themselves:
harness.records; atomic writes: harness.atomic).

Two leaderboards may share an output folder, and a run may be killed at any instant, so every file
another process may read is replaced in one step (tmp file + ``os.replace``) and each run directory
has a lock file held with ``fcntl.flock`` while the run trains. A lock held by a dead process is
released by the kernel, so a killed run never stays 'busy'.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

LOCK_NAME = '.lock'


class Busy(RuntimeError):
    """The lock is held by another process."""


class FileLock:
    """An ``flock`` on ``path``; ``blocking=False`` raises :class:`Busy` at once when it is held.

    Locks are per open file description, so two ``FileLock`` objects in one process also exclude
    each other (what the tests rely on to play two leaderboards).
    """

    def __init__(
        self, path: str | os.PathLike, blocking: bool = False, timeout: float | None = None
    ):
        self.path = Path(path)
        self.blocking = blocking
        self.timeout = timeout
        self._fd: int | None = None

    def acquire(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(fd)
                    raise
                if not self.blocking or (deadline is not None and time.monotonic() > deadline):
                    os.close(fd)
                    raise Busy(f'{self.path} is locked by another process') from None
                time.sleep(0.05)
        # Who holds it, for a person looking at a stuck directory; the lock itself is the flock.
        os.ftruncate(fd, 0)
        os.write(fd, f'{os.getpid()} {os.uname().nodename}\n'.encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_locked(path: str | os.PathLike) -> bool:
    """Whether another process holds the lock at ``path`` now (a probe: take and drop it)."""
    if not Path(path).exists():
        return False
    try:
        FileLock(path).acquire().release()
    except Busy:
        return True
    return False
