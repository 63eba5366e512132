"""Spread image rendering over processes; every image has its own random stream, so the split is
free."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def default_workers() -> int:
    """One process per CPU this process may use."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus)


def run_chunks(fn: Callable[..., None], pids: Sequence[int], workers: int, *args: Any) -> None:
    """Call ``fn(*args, chunk)`` over interleaved chunks of ``pids``; re-raise the first error."""
    if workers <= 1 or len(pids) < 2:
        fn(*args, list(pids))
        return
    chunks = [list(pids[i::workers]) for i in range(workers)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(fn, *args, c) for c in chunks]:
            future.result()
