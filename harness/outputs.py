"""Where a command writes: never over one of its own inputs.

Every command that writes a file or a folder (``vireid extract --out``, ``score --json``,
``convert DST``, ``tables --out``, ``figures --out``, ``data synth --out``, ``train --work-dir``,
...) calls :func:`check_output` with what it reads, before it reads or computes anything, so that a
refused command has written nothing. Paths are compared as the file system sees them: resolved
(symbolic links, ``..``), then by device and inode where both exist (hard links, bind mounts).

The refusal is one line naming the output, the input it would destroy and the fix; it is a
:class:`~harness.errors.HarnessError`, so ``vireid`` exits with code 2.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from harness.errors import HarnessError
from protocols.datasets.base import printable

PathLike = str | os.PathLike


class OutputOverInputError(HarnessError, ValueError):
    """A command was asked to write over (or inside) one of its own inputs."""


class OutputPathError(HarnessError, ValueError):
    """An output path the command cannot use (e.g. a run folder whose name is not UTF-8)."""


# Why a run's folder needs a UTF-8 name (found by a run that failed after its first epoch).
RUN_DIR_TEXT = 'a run writes its own paths into text files (its log, last_checkpoint)'


def require_utf8(option: str, path: PathLike, why: str = RUN_DIR_TEXT) -> None:
    """Refuse ``path`` when its name is not UTF-8 and ``why`` says it will be written as text."""
    try:
        os.fsdecode(path).encode('utf-8')
    except UnicodeEncodeError:
        raise OutputPathError(
            f'{option} {printable(path)}: its name is not UTF-8 and {why}; choose a path whose '
            'name is UTF-8 (nothing was written)'
        ) from None


def _real(path: PathLike) -> Path:
    return Path(os.path.realpath(os.fspath(path)))


def _identity(path: PathLike) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # missing, unreadable, or a name the system refuses
        return None
    return st.st_dev, st.st_ino


def how_same(a: PathLike, b: PathLike) -> str | None:
    """How ``a`` and ``b`` are one file: ``''`` (the same path), or through a symbolic link or
    ``..``, or a hard link (in words, for a message); None when they are two files (or do not
    exist)."""
    if os.path.abspath(a) == os.path.abspath(b):
        return ''
    if _real(a) == _real(b):
        return 'the same file through a symbolic link or ".."'
    ia = _identity(a)
    if ia is not None and ia == _identity(b):
        return 'the same file through a hard link' if os.path.isfile(a) else 'the same folder'
    return None


def is_inside(path: PathLike, folder: PathLike) -> bool:
    """Whether ``path`` is ``folder`` or lies below it, symbolic links and bind mounts
    included."""
    real, top = _real(path), _real(folder)
    if real == top or top in real.parents:
        return True
    target = _identity(folder)
    if target is None:
        return False
    # A bind mount (or a folder reached another way) is only found by its inode.
    return any(_identity(p) == target for p in (real, *real.parents) if p.exists())


def _is_the(label: str, given: Path, path: Path, how: str) -> str:
    """'is the checkpoint itself' / 'is the checkpoint X (the same file through ...)'."""
    if not how and os.fspath(given) == os.fspath(path):
        return f'is the {label} itself'
    return f'is the {label} {printable(path)}' + (f' ({how})' if how else '')


def _targets(output: Path, inputs: list[tuple[str, Path]], writes: Iterable[str]) -> list:
    """(file written, input label, input path) for the inputs inside folder ``output`` whose path
    there matches a pattern of ``writes``, and the existing files matching them (links)."""
    patterns = list(writes)
    top = _real(output)
    found = []
    for label, path in inputs:
        real = _real(path)
        if top in real.parents:
            rel = real.relative_to(top).as_posix()
            if any(fnmatch.fnmatchcase(rel, p) for p in patterns):
                found.append((output / rel, label, path))
    if output.is_dir():
        # Links already in the folder: each input by resolved path and by device and inode, so
        # that a folder of many files against many inputs (tables over records) stays linear.
        known: dict = {}
        for label, path in inputs:
            known.setdefault(_real(path), (label, path))
            identity = _identity(path)
            if identity is not None:
                known.setdefault(identity, (label, path))
        for pattern in patterns:
            for written in output.glob(pattern):
                hit = known.get(_real(written)) or known.get(_identity(written))
                if hit is not None:
                    found.append((written, *hit))
    return found


def check_output(
    option: str,
    output: PathLike,
    inputs: Mapping[str, PathLike | None] | Iterable[tuple[str, PathLike | None]] = (),
    *,
    data: Mapping[str, PathLike | None] | None = None,
    writes: Iterable[str] | None = None,
    fix: str | None = None,
) -> None:
    """Refuse ``output`` (given as ``option``, e.g. ``--out``) when writing it would replace an
    input or write inside a dataset.

    ``inputs`` names the files the command reads (label -> path; None entries are skipped).
    ``data`` names folders nothing may be written into (dataset roots). ``writes`` says that
    ``output`` is a folder and which files the command writes in it (glob patterns relative to
    it, e.g. ``'*.csv'``, ``'features/*.npz'``); without it ``output`` is the file written.
    ``fix`` replaces the default advice (choose another ``option``).
    """
    output = Path(output)
    pairs = inputs.items() if isinstance(inputs, Mapping) else inputs
    files = [(label, Path(path)) for label, path in pairs if path is not None]
    advice = fix or f'choose another {option}'
    for label, folder in (data or {}).items():
        if folder is not None and is_inside(output, folder):
            raise OutputOverInputError(
                f'{option} {printable(output)} is inside the {label} {printable(folder)}: writing '
                f'there would change the dataset; {advice} outside it (nothing was written)'
            )
    if writes is None:
        for label, path in files:
            how = how_same(output, path)
            if how is not None:
                raise OutputOverInputError(
                    f'{option} {printable(output)} {_is_the(label, output, path, how)}: writing it '
                    f'would destroy the {label}; {advice} (nothing was written)'
                )
        if output.is_dir():
            raise OutputOverInputError(
                f'{option} {printable(output)} is a folder; give the path of a file to write '
                '(nothing was written)'
            )
        return
    if output.exists() and not output.is_dir():
        raise OutputOverInputError(
            f'{option} {printable(output)} is a file, not a folder; give a folder path '
            '(nothing was written)'
        )
    for written, label, path in _targets(output, files, writes):
        how = how_same(written, path) or ''
        raise OutputOverInputError(
            f'{option} {printable(output)} would write {printable(written)}, which '
            f'{_is_the(label, written, path, how)}; {advice}, or move the {label} out of it '
            '(nothing was written)'
        )
