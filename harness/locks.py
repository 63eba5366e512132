"""Run locks: non-blocking ``flock`` locks, one per run directory, taken by every process that
writes into one (``vireid train``, a scored run, a leaderboard's worker), and the holder's name.

A run directory has one writer at a time, so every file another process may read is replaced in
one step (:mod:`harness.atomic`) and each run directory has a lock file held with ``fcntl.flock``
while the run trains. A lock held by a dead process is released by the kernel, so a killed run
never stays 'busy'. The lock file also says who holds it (pid, host, command, since when), for the
refusal a second writer prints and for a person looking at a stuck directory.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import json
import os
import shlex
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from harness.errors import HarnessError

LOCK_NAME = '.lock'
# Lock files this process holds (resolved path -> FileLock objects holding it).
_HELD: Counter[str] = Counter()


class Busy(RuntimeError):
    """The lock is held by another process."""


class RunDirBusy(Busy, HarnessError):
    """A run directory is being written by another process (exit code 2: nothing was written)."""


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
        # Who holds it, for the refusal of a second writer; the lock itself is the flock.
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(_me()) + '\n').encode())
        self._fd = fd
        _HELD[_key(self.path)] += 1
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
            _HELD[_key(self.path)] -= 1

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _key(path: Path) -> str:
    return str(path.resolve())


def _me() -> dict:
    return dict(
        pid=os.getpid(),
        host=os.uname().nodename,
        command=_command(),
        since=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds'),
    )


def _command() -> str:
    """This process's command line as it was typed: ``vireid train ...``, ``python -m
    harness.leaderboard.worker ...``."""
    if not sys.argv or not sys.argv[0]:
        return ''
    spec = getattr(sys.modules.get('__main__'), '__spec__', None)
    if spec is not None and spec.name:  # python -m MODULE
        prog = ['python', '-m', spec.name.removesuffix('.__main__')]
    else:
        prog = [Path(sys.argv[0]).name]
    return shlex.join([*prog, *sys.argv[1:]])


def is_locked(path: str | os.PathLike) -> bool:
    """Whether another process holds the lock at ``path`` now (a probe: take and drop it)."""
    if not Path(path).exists():
        return False
    try:
        FileLock(path).acquire().release()
    except Busy:
        return True
    return False


def holder(path: str | os.PathLike) -> dict | None:
    """What the lock file at ``path`` says of its holder (pid, host, command, since), if anything
    (an older lock file holds ``pid host`` only)."""
    try:
        text = Path(path).read_text(encoding='utf-8').strip()
    except (OSError, UnicodeDecodeError):
        return None
    try:
        info = json.loads(text)
    except json.JSONDecodeError:
        pid, _, host = text.partition(' ')
        return dict(pid=pid, host=host) if pid else None
    return info if isinstance(info, dict) else None


def describe_holder(path: str | os.PathLike) -> str:
    """'process 123 on node1 (`vireid train ...`, since 2025-...)' or 'another process'."""
    info = holder(path) or {}
    if not info.get('pid'):
        return 'another process'
    text = f'process {info["pid"]}' + (f' on {info["host"]}' if info.get('host') else '')
    details = [f'`{info["command"]}`' if info.get('command') else '', info.get('since') or '']
    details = [d for d in details if d]
    if len(details) == 2:
        details[1] = f'since {details[1]}'
    return text + (f' ({", ".join(details)})' if details else '')


@contextlib.contextmanager
def hold_run_dir(work_dir: str | os.PathLike) -> Iterator[None]:
    """Hold ``work_dir``'s lock (the one a leaderboard holds for its runs) while the body writes
    into it; :class:`RunDirBusy` naming the holder when another process has it.

    Re-entrant within a process (a leaderboard worker holds the lock of the run it hands to the
    engine), and only the lead rank of a torchrun launch takes it (the others follow it).
    """
    path = Path(work_dir) / LOCK_NAME
    if int(os.environ.get('RANK', '0')) != 0 or (path.exists() and _HELD[_key(path)] > 0):
        yield
        return
    lock = FileLock(path)
    try:
        lock.acquire()
    except Busy:
        raise RunDirBusy(
            f'{work_dir} is being written by {describe_holder(path)}: one run directory has one '
            'writer. Wait for it to finish (or stop it), or give this run another work dir '
            '(--work-dir / --out)'
        ) from None
    try:
        yield
    finally:
        lock.release()
