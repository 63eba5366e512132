"""Each run's progress in a small file: epoch and iteration out of the totals, and an ETA.

:class:`ProgressFileHook` rewrites ``<work_dir>/progress.json`` atomically as training goes (at
most every ``interval_s`` seconds, and at every epoch end), so anything that can read the run
directory can tell how far a run is: the leaderboard's display, ``vireid leaderboard --dry-run``
(also for Slurm jobs on another node), and the leaderboard page. The ETA is the mean time per
iteration in this process (a resumed run counts only what it trained since the resume) times
the iterations left, plus nothing for the final test.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from mmengine.hooks import Hook

from harness.atomic import write_json_atomic
from harness.engine.provenance import now
from harness.registry import HOOKS

PROGRESS_NAME = 'progress.json'


def _duration(seconds: float) -> str:
    seconds = int(round(max(0.0, seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f'{h}h{m:02d}m' if h else (f'{m}m{s:02d}s' if m else f'{s}s')


@HOOKS.register_module()
class ProgressFileHook(Hook):
    """Writes ``progress.json`` in the work dir: stage, epoch, iteration, totals and an ETA."""

    priority = 'LOW'

    def __init__(self, interval_s: float = 10.0, clock=time.monotonic) -> None:
        self.interval_s, self.clock = interval_s, clock
        self._t0: float | None = None
        self._iter0 = 0
        self._last = -float('inf')

    def _write(
        self, runner, stage: str, inner_iter: int | None = None, force: bool = False
    ) -> None:
        t = self.clock()
        if not force and t - self._last < self.interval_s:
            return
        self._last = t
        try:
            per_epoch = len(runner.train_dataloader)
        except (TypeError, AttributeError):
            per_epoch = None
        max_epochs = int(getattr(runner, 'max_epochs', 0) or 0)
        done = int(runner.iter)
        total = per_epoch * max_epochs if per_epoch else None
        eta = None
        if self._t0 is not None and total and done > self._iter0:
            eta = (t - self._t0) / (done - self._iter0) * (total - done)
        epoch = int(runner.epoch)
        state = dict(
            stage=stage,
            epoch=min(epoch + (stage == 'train'), max_epochs) if max_epochs else epoch,
            max_epochs=max_epochs,
            iter=inner_iter,
            iters_per_epoch=per_epoch,
            global_iter=done,
            max_iters=total,
            eta_s=None if eta is None else round(eta, 1),
            elapsed_s=None if self._t0 is None else round(t - self._t0, 1),
            updated=now(),
        )
        try:
            write_json_atomic(Path(runner.work_dir) / PROGRESS_NAME, state)
        except OSError:  # progress is informative: never fail a run over it
            pass

    def before_train(self, runner) -> None:
        self._t0, self._iter0 = self.clock(), int(runner.iter)
        self._write(runner, 'train', 0, force=True)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._write(runner, 'train', batch_idx + 1)

    def after_train_epoch(self, runner) -> None:
        self._write(runner, 'train', None, force=True)

    def before_test(self, runner) -> None:
        if self._t0 is not None:
            self._write(runner, 'test', None, force=True)


def read_progress(run_dir: str | Path) -> dict[str, Any] | None:
    """The progress a run last wrote, or None (no file yet, or unreadable)."""
    try:
        data = json.loads((Path(run_dir) / PROGRESS_NAME).read_text(encoding='utf-8'))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def format_progress(p: dict[str, Any]) -> str:
    """``epoch 3/81, iter 120/348, ETA 1h05m`` (what is known of it)."""
    if p.get('stage') == 'test':
        return f'testing after epoch {p.get("epoch")}/{p.get("max_epochs")}'
    parts = [f'epoch {p.get("epoch")}/{p.get("max_epochs")}']
    if p.get('iter') is not None and p.get('iters_per_epoch'):
        parts.append(f'iter {p["iter"]}/{p["iters_per_epoch"]}')
    if p.get('eta_s') is not None:
        parts.append(f'ETA {_duration(p["eta_s"])}')
    return ', '.join(parts)
