"""Ordinary faults and the one message each becomes on the command line.

A fault the user can fix (a bad path, config, option or file) raises a :class:`HarnessError`
whose text says what went wrong, where (the path or key) and how to fix it; ``vireid`` prints that
text and exits with :attr:`HarnessError.exit_code` (2), or 1 for a run that started and failed
(:class:`RunFailed`). Anything else is a bug and keeps its traceback. The types also derive from
the built-in type a caller would catch (``ValueError``, ``FileNotFoundError``), so library code
written against those keeps working.
"""

from __future__ import annotations

import errno
import os

EXIT_FAULT = 2  # bad input or environment: nothing ran, nothing was lost
EXIT_RUN_FAILED = 1  # a run started and failed; its record says why


class HarnessError(Exception):
    """An ordinary fault with a complete message (what, where, how to fix)."""

    exit_code = EXIT_FAULT


class ConfigError(HarnessError, ValueError):
    """A config file or ``--cfg-options`` entry is invalid."""


class UsageError(HarnessError, ValueError):
    """Options that cannot go together, or a command that would replace a result it was not told
    to replace."""


class CheckpointError(HarnessError, ValueError):
    """A checkpoint cannot be read, is unsafe to read, or does not fit the model."""


class RunFailed(HarnessError):
    """A run started and failed; its record holds the cause. ``cause`` is the original error."""

    exit_code = EXIT_RUN_FAILED

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class StopSignal(BaseException):
    """What the harness's SIGTERM handlers raise: like ``KeyboardInterrupt`` for SIGINT, a
    ``BaseException``, so that code which catches ``Exception`` does not turn the stop into
    another error. The run records it and raises :class:`Interrupted` in its place."""

    # The last stop a handler raised in this process, until a run resets it: code that catches
    # everything (mmengine's config formatting has a bare ``except``) may turn the stop into
    # another error, and the run still has to be recorded as stopped.
    received: StopSignal | None = None

    def __init__(self, message: str, signal_name: str = 'SIGTERM') -> None:
        super().__init__(message)
        self.signal_name = signal_name
        StopSignal.received = self

    @property
    def exit_code(self) -> int:
        import signal

        return 128 + int(getattr(signal, self.signal_name, signal.SIGTERM))


class Interrupted(HarnessError):
    """The process was told to stop (``signal_name``: 'SIGTERM' from ``kill``, a scheduler's
    time limit or preemption); the run records it and stops. Exit code 128 + the signal number,
    as a shell reports a process the signal ended."""

    def __init__(self, message: str, signal_name: str = 'SIGTERM') -> None:
        super().__init__(message)
        self.signal_name = signal_name

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        import signal

        return 128 + int(getattr(signal, self.signal_name, signal.SIGTERM))


# errno -> how to fix it (the OS message already says what happened).
_OS_FIXES = {
    errno.EACCES: 'choose a folder you may write to (e.g. --out/--work-dir) or fix its permissions',
    errno.EPERM: 'choose a folder you may write to (e.g. --out/--work-dir) or fix its permissions',
    errno.EROFS: 'the file system is read-only; choose another folder (e.g. --out/--work-dir)',
    errno.ENOSPC: 'free disk space (or choose a folder on another disk), then run it again',
    errno.EDQUOT: 'free space within your disk quota, then run the command again',
    errno.ENOENT: 'check the path',
    errno.EISDIR: 'give a file, not a folder',
    errno.ENOTDIR: 'a part of the path is a file, not a folder; check the path',
    errno.EEXIST: 'remove it or choose another name',
}
_NOT_A_FOLDER = 'it is a file, not a folder; choose another path'


def os_error_message(err: OSError) -> str:
    """``OSError`` as one line: what the system said, on which path, and how to fix it."""
    text = err.strerror or str(err) or type(err).__name__
    paths = [os.fsdecode(p) for p in (err.filename, err.filename2) if p is not None]
    if paths:
        text += ': ' + ' -> '.join(paths)
    fix = _OS_FIXES.get(err.errno)
    if err.errno == errno.EEXIST and paths and os.path.isfile(paths[0]):
        fix = _NOT_A_FOLDER  # makedirs met a file where a folder was to be
    return text + (f'; {fix}' if fix else '')


def unicode_message(err: UnicodeError) -> str:
    """A text that could not be encoded or decoded, shown around the offending bytes (usually a
    path: a file or folder name that is not UTF-8), with the fix."""
    obj = err.object
    text = obj if isinstance(obj, str) else bytes(obj).decode('utf-8', 'surrogateescape')
    start, end = err.start, err.end
    # The line holding the bad characters, at most 160 characters of it.
    first = text.rfind('\n', 0, start) + 1
    last = text.find('\n', end)
    line = text[first : last if last != -1 else len(text)]
    if len(line) > 160:
        line = line[max(0, start - first - 80) :][:160]
    shown = line.encode('utf-8', 'surrogateescape' if _escapable(line) else 'backslashreplace')
    shown_text = shown.decode('utf-8', 'backslashreplace')
    return (
        f'"{shown_text}" holds bytes that are not {err.encoding} ({err.reason}); it is most '
        'likely a file or folder name: rename it (or give a path whose name is UTF-8)'
    )


def _escapable(text: str) -> bool:
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)


def describe(err: BaseException) -> str | None:
    """The user-facing message of an ordinary fault, or ``None`` when ``err`` is a bug.

    ``KeyError`` is shown by its text, not its ``repr`` (no quotes around the message).
    """
    if isinstance(err, HarnessError):
        return str(err)
    if isinstance(err, (UnicodeEncodeError, UnicodeDecodeError)):
        return unicode_message(err)
    if isinstance(err, KeyError):
        return str(err.args[0]) if err.args else 'KeyError'
    if isinstance(err, OSError) and err.errno is not None:  # from the system: add path and fix
        return os_error_message(err)
    if isinstance(err, ModuleNotFoundError):
        return (
            f'{err}; install it (pip install {err.name or "..."}) or drop the option that needs it'
        )
    if isinstance(err, (ValueError, OSError, RuntimeError)):
        return str(err)
    return None


def exit_code(err: BaseException) -> int:
    return getattr(err, 'exit_code', EXIT_FAULT)


class HarnessWarning(UserWarning):
    """Something the user should know that does not stop the command (shown as one line)."""
