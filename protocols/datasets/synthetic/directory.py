"""Where a synthetic dataset is written: marker file, refusal rules and all-or-nothing installation.

A dataset is rendered into a hidden sibling staging folder, its ``.synthetic.json`` marker is
written last, and only then is the folder renamed onto the target. So the target either does not
exist or is complete; an interrupted run leaves only a ``.<name>.partial-*`` sibling that can be
deleted.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..base import DatasetLayoutError

MARKER = '.synthetic.json'
GENERATOR = 'protocols.datasets.synthetic'
# Bump whenever the bytes written for a given (kind, ids, seed, gap) change.
# 2: infrared tones mixed with the colours' grey level by the gap knob; coarser textures.
VERSION = 2

# Top-level entries each kind writes; anything else in a target means it holds foreign files.
ENTRIES = {
    'sysu': {'cam1', 'cam2', 'cam3', 'cam4', 'cam5', 'cam6', 'exp', MARKER},
    'regdb': {'Visible', 'Thermal', 'idx', MARKER},
    'llcm': {'idx', 'vis', 'nir', 'test_vis', 'test_nir', MARKER},
}


def read_marker(root: Path) -> dict[str, Any] | None:
    """The marker of ``root`` or None if there is none; a damaged marker is an error."""
    path = root / MARKER
    if not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text())
        if not isinstance(marker, dict):
            raise ValueError('not a JSON object')
        return marker
    except ValueError as exc:
        raise DatasetLayoutError(
            f'{path}: unreadable synthetic-dataset marker ({exc}); expected the JSON object '
            f'written by {GENERATOR}. Delete the directory (rm -r {root}) and generate again.'
        ) from exc


def same(marker: dict[str, Any] | None, params: dict[str, Any]) -> bool:
    return marker is not None and all(marker.get(k) == v for k, v in params.items())


def check_target(root: Path, kind: str) -> bool:
    """Raise unless ``root`` may receive a ``kind`` dataset; True when it holds one to be
    replaced."""
    if not root.exists():
        return False
    if not root.is_dir():
        raise DatasetLayoutError(
            f'{root}: exists and is not a directory; pass a directory path as out.'
        )
    entries = {p.name for p in root.iterdir()}
    if not entries:
        return False
    marker = read_marker(root)
    if marker is None:
        raise DatasetLayoutError(
            f'{root}: directory is not empty and has no {MARKER} marker, so it is not a synthetic '
            f'dataset written by {GENERATOR} (or was not completely written). Refusing to write '
            f'into it: pass an empty or new directory as out, or delete this one (rm -r {root}) if '
            'it is disposable.'
        )
    if marker.get('kind') != kind:
        raise DatasetLayoutError(
            f'{root}: holds a synthetic {marker.get("kind")!r} dataset, not {kind!r}; pass another '
            f'directory as out, or delete this one (rm -r {root}).'
        )
    foreign = sorted(entries - ENTRIES[kind])
    if foreign:
        raise DatasetLayoutError(
            f'{root}: synthetic {kind} dataset with other parameters, but it also holds entries '
            f'the generator did not write ({", ".join(foreign)}); refusing to replace it. Move '
            'those away or pass another directory as out.'
        )
    return True


def enclosing_dataset(path: str | os.PathLike) -> tuple[str, Path] | None:
    """``(kind, root)`` of the dataset (real or synthetic) that ``path`` lies inside, if any: the
    nearest folder above it (links resolved) that holds a dataset's top-level entries. Writing
    there would add folders the dataset's reader meets (an id folder, a camera, ...)."""
    real = Path(os.path.realpath(path))
    for folder in real.parents:
        for kind, entries in ENTRIES.items():
            if all((folder / name).exists() for name in entries - {MARKER}):
                return kind, folder
    return None


def build(root: Path, kind: str, params: dict[str, Any], writer: Callable[[Path], dict]) -> Path:
    """Make ``root`` hold the dataset ``writer`` produces, unless it already holds it (same
    params)."""
    if same(read_marker(root) if root.is_dir() else None, params):
        return root
    replace = check_target(root, kind)
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = root.parent / f'.{root.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}'
    staging.mkdir()
    try:
        stats = writer(staging)
        marker = {'generator': GENERATOR, **params, 'stats': stats}
        (staging / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True) + '\n')
        _install(staging, root, replace, params)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return root


def _install(staging: Path, root: Path, replace: bool, params: dict[str, Any]) -> None:
    old = None
    if replace:
        old = root.parent / f'.{root.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}'
        os.rename(root, old)
    try:
        os.replace(staging, root)  # also replaces an empty directory
    except OSError:
        if old is not None and not root.exists():
            os.rename(old, root)  # put the previous dataset back rather than lose it
            old = None
        # Another process may have installed the same dataset meanwhile: that is success.
        if same(read_marker(root) if root.is_dir() else None, params):
            return
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
