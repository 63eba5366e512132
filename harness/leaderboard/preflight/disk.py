"""Disk space the planned runs will write, against the free space where they write it.

Three things grow with a leaderboard: the decode-once image cache (one uint8 array per dataset
root, input size and resize filter, holding every image the root's lists read, in
``$VIREID_CACHE`` or a config's ``cache_dir``: its size is :func:`harness.data.cache.npy_bytes`
of those images, exactly the file written; every run of that root and shape reads it, an entry
already there costs nothing more), the checkpoints each run keeps (model and optimizer state,
``checkpoint.max_keep_ckpts`` of them, plus the one being written before the oldest goes) and the
test features kept with a run's record. Needs are summed per file system: folders on one disk
share its free space.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.leaderboard.preflight.findings import Finding

# Trainable-parameter copies an optimizer keeps per step (SGD: the momentum buffer; Adam: two
# moment estimates). An optimizer not listed is counted as 2 (the larger).
OPTIMIZER_STATE_COPIES = {'SGD': 1, 'Adam': 2, 'AdamW': 2, 'Adamax': 2, 'NAdam': 2, 'RAdam': 2}
ASSUMED_FEATURE_DIM = 2048  # when a meta build cannot tell (a ResNet-50's pooled feature)
LOW_SPACE = 0.9  # a warning when the runs would fill more of the free space than this


def optimizer_copies(optim_wrapper: Mapping[str, Any]) -> int:
    optimizer = dict(optim_wrapper.get('optimizer', {}))
    kind = str(optimizer.get('type', 'SGD')).rsplit('.', 1)[-1]
    if kind == 'SGD':
        return 1 if optimizer.get('momentum', 0) else 0
    return OPTIMIZER_STATE_COPIES.get(kind, 2)


def checkpoints_kept(cfg: Any) -> int:
    """Checkpoint files a run keeps: ``max_keep_ckpts`` (all when <= 0), one more for the best
    epoch of an optimistic selection rule. (While a run writes its newest, it holds one more
    before the oldest goes: the caller adds that file once per run in flight.)"""
    from harness.engine.config import is_optimistic
    from harness.engine.run import runtime_settings

    hook = runtime_settings(cfg)['default_hooks']['checkpoint']
    epochs = int(cfg.train_cfg['max_epochs'])
    saved = max(1, epochs // max(1, int(hook.get('interval', 1))))
    keep = int(hook.get('max_keep_ckpts', -1))
    kept = saved if keep <= 0 else min(keep, saved)
    return kept + (1 if is_optimistic(cfg) else 0)


def features_bytes(cfg: Any, test_images: int, dim: int | None) -> int:
    """The ``features.npz`` a run keeps: float32 features and their paths, when the config keeps
    them (``test.keep_features``; unset: when they are small, :mod:`harness.engine.metric`)."""
    from harness.engine.metric import KEEP_FEATURES_MAX_BYTES

    keep = cfg.get('test', {}).get('keep_features')
    nbytes = test_images * (dim or ASSUMED_FEATURE_DIM) * 4
    if keep is False or (keep is None and nbytes > KEEP_FEATURES_MAX_BYTES):
        return 0
    return nbytes + test_images * 64  # the relative paths, as a unicode array


@dataclass(frozen=True)
class Need:
    """``nbytes`` that ``runs`` will write into ``folder`` (``what``: cache, checkpoints or
    features)."""

    folder: Path
    what: str
    nbytes: int
    runs: tuple[str, ...] = ()


def free_space(path: str | os.PathLike) -> tuple[int, int]:
    """(file-system id, free bytes) of the file system ``path`` is or will be on (its nearest
    existing ancestor). The one place the preflight asks the system; tests replace it."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return os.stat(p).st_dev, shutil.disk_usage(p).free


def fmt_bytes(n: float) -> str:
    for unit in ('B', 'KB', 'MB', 'GB'):
        if abs(n) < 1000:
            return f'{n:.0f} {unit}' if unit == 'B' else f'{n:.1f} {unit}'
        n /= 1000
    return f'{n:.1f} TB'


def check_disk(needs: Iterable[Need]) -> list[Finding]:
    """One finding per file system the planned runs would fill (or nearly fill)."""
    by_fs: dict[int, tuple[int, list[Need]]] = {}
    for need in needs:
        if need.nbytes <= 0:
            continue
        fs, free = free_space(need.folder)
        by_fs.setdefault(fs, (free, []))[1].append(need)
    out = []
    for free, group in by_fs.values():
        total = sum(n.nbytes for n in group)
        if total <= LOW_SPACE * free:
            continue
        parts: dict[tuple[str, str], int] = {}
        for n in group:
            where = _shown_folder(n, group)
            parts[(n.what, where)] = parts.get((n.what, where), 0) + n.nbytes
        detail = ', '.join(f'{what} {fmt_bytes(b)} in {at}' for (what, at), b in parts.items())
        runs = tuple(sorted({r for n in group for r in n.runs}))
        if total > free:
            message = (
                f'not enough disk space: the planned runs write {fmt_bytes(total)} ({detail}) '
                f'but that file system has {fmt_bytes(free)} free; free space there, or move '
                'the cache (VIREID_CACHE) or the runs (--out) to a larger disk'
            )
            out.append(Finding('disk', message, runs=runs))
        else:
            message = (
                f'the planned runs fill {total / free:.0%} of the free space ({detail}; '
                f'{fmt_bytes(free)} free)'
            )
            out.append(Finding('disk', message, level='warning', runs=runs))
    return out


def _shown_folder(need: Need, group: Sequence[Need]) -> str:
    """The folder a need is shown under: the cache folder itself, or the common folder of the
    run directories (``OUT/runs``)."""
    if need.what == 'cache':
        return str(need.folder)
    dirs = [str(n.folder) for n in group if n.what == need.what]
    common = Path(os.path.commonpath(dirs))
    return str(common.parent if len(dirs) == 1 else common)
