"""Figures for many runs at once (``vireid leaderboard --figures``): one failing run does not stop
the others, and runs whose figures are newer than their record are left as they are."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from harness.figures.draw import draw_figures
from harness.figures.manifest import figures_up_to_date


def draw_for_runs(
    runs: Iterable[tuple[str | Path, str | Path | None]],
    redraw: bool = False,
    log: Callable[[str], None] | None = None,
    **options: Any,
) -> list[tuple[str, str]]:
    """Draws the figures of each ``(run_dir, data_root)`` (``data_root`` None: the run config's)
    with :func:`draw_figures` ``options``; returns ``(run_dir, error)`` for each failed run."""
    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    failed = []
    for run_dir, data_root in runs:
        if not redraw and figures_up_to_date(run_dir):
            log(f'[figures] {run_dir}: up to date')
            continue
        try:
            manifest = draw_figures(run_dir, data_root=data_root, log=lambda text: None, **options)
        except (ValueError, FileNotFoundError, KeyError, RuntimeError) as err:
            failed.append((str(run_dir), str(err)))
            log(f'[figures] {run_dir}: FAILED: {err}')
            continue
        log(f'[figures] {run_dir}: {len(manifest["figures"])} figures in {manifest["out"]}')
    return failed
