"""Record files and locks: tolerant reads and non-blocking per-run locks (atomic writes:
harness.atomic).

Two leaderboards may share an output folder, and a run may be killed at any instant, so every file
another process may read is replaced in one step (tmp file + ``os.replace``) and each run directory
has a lock file held with ``fcntl.flock`` while the run trains. A lock held by a dead process is
released by the kernel, so a killed run never stays 'busy'.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from pathlib import Path

RECORD_NAME = 'record.json'
LOCK_NAME = '.lock'
# Where a record's weights come from (its ``source`` field; absent in older records: 'reproduced'):
# trained by the run, the run's initial weights scored untrained, or the authors' released weights.
RECORD_SOURCES = ('official', 'reproduced', 'untrained')


def read_record(path: str | os.PathLike) -> dict | None:
    """The record at ``path`` (a file or a run directory), or None when there is none.

    An unreadable record (not JSON, not an object) is reported as None too: the run is then
    treated as not finished and redone, which is the safe side.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RECORD_NAME
    try:
        with open(path, encoding='utf-8') as fh:
            data = json.load(fh)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


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


def find_records(root: str | os.PathLike) -> list[Path]:
    """Every ``record.json`` under ``root``, sorted (deterministic table order and paths)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f'records folder {root} does not exist (pass the --out folder of a '
            f'leaderboard, or any folder holding run directories with record.json)'
        )
    return sorted(p for p in root.rglob(RECORD_NAME) if p.is_file())
