"""A progress display on stderr: runs done / total, the runs in flight, and an ETA.

The ETA is the mean wall time of the runs finished in this session times the runs left, divided
by the number of runs in flight at once; before the first run ends there is none to give.

Each run in flight also reports its own epoch, iteration and ETA, read from the progress file its
training writes (:mod:`harness.engine.progress`). On a terminal they form a live table (rich);
elsewhere (logs, Slurm output) they are plain lines, one per run every ``interval_s`` seconds.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from harness.engine.progress import format_progress, read_progress


def fmt_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f'{h}h{m:02d}m' if h else (f'{m}m{s:02d}s' if m else f'{s}s')


class Progress:
    def __init__(
        self,
        total: int,
        parallel: int = 1,
        stream: TextIO | None = None,
        clock=time.monotonic,
        interval_s: float = 120.0,
        live: bool | None = None,
    ):
        self.total = total
        self.parallel = max(1, parallel)
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.finished = 0
        self.durations: list[float] = []  # of runs that trained here (not skipped or busy)
        self.running: dict[str, float] = {}
        self.work_dirs: dict[str, Path] = {}
        self.t0 = clock()
        self.interval_s = interval_s
        self._last_tick = clock()
        # A live table only where a person watches: a terminal, not a log file or a Slurm output.
        self.live = bool(getattr(self.stream, 'isatty', lambda: False)()) if live is None else live
        self._live = None

    def eta(self) -> float | None:
        if not self.durations:
            return None
        left = self.total - self.finished
        mean = sum(self.durations) / len(self.durations)
        # Runs in flight are partly done already.
        elapsed_now = sum(self.clock() - t for t in self.running.values())
        return max(0.0, (left * mean - elapsed_now) / min(self.parallel, max(left, 1)))

    def _line(self, text: str) -> None:
        line = f'[leaderboard {self.finished}/{self.total}] {text}'
        if self._live is not None:
            self._live.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=self.stream, flush=True)

    def run_progress(self) -> dict[str, str]:
        """key -> 'epoch e/E, iter i/I, ETA ...' of the runs in flight with a progress file."""
        out = {}
        for key in self.running:
            prog = read_progress(self.work_dirs[key]) if key in self.work_dirs else None
            if prog:
                out[key] = format_progress(prog)
        return out

    def tick(self) -> None:
        """Refresh the per-run progress (launchers call this while they wait)."""
        now = self.clock()
        if self.live:
            if self._live is None or now - self._last_tick >= 1.0:  # a terminal: once a second
                self._last_tick = now
                self._refresh_live()
            return
        if now - self._last_tick < self.interval_s:
            return
        self._last_tick = now
        for key, text in self.run_progress().items():
            self._line(f'{key}: {text}')

    def _refresh_live(self) -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.table import Table

        table = Table(
            title=f'leaderboard {self.finished}/{self.total} done'
            + (f', ETA {fmt_duration(self.eta())}' if self.eta() is not None else ''),
            title_justify='left',
            expand=False,
        )
        table.add_column('run in flight')
        table.add_column('progress')
        table.add_column('running for', justify='right')
        progress = self.run_progress()
        for key, t in self.running.items():
            table.add_row(key, progress.get(key, 'starting'), fmt_duration(self.clock() - t))
        if self._live is None:
            self._live = Live(
                table,
                console=Console(file=self.stream),
                refresh_per_second=1,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        else:
            self._live.update(table)

    def start(self, key: str, work_dir: str | Path | None = None) -> None:
        self.running[key] = self.clock()
        if work_dir is not None:
            self.work_dirs[key] = Path(work_dir)
        eta = self.eta()
        self._line(f'running {key}' + (f' (ETA {fmt_duration(eta)})' if eta is not None else ''))

    def skip(self, key: str, why: str) -> None:
        self.finished += 1
        self._line(f'skipped {key}: {why}')

    def finish(self, key: str, status: str, error: str | None = None) -> None:
        started = self.running.pop(key, None)
        self.finished += 1
        took = self.clock() - started if started is not None else 0.0
        if started is not None and status in ('done', 'failed'):
            self.durations.append(took)
        eta = self.eta()
        msg = f'{status} {key} in {fmt_duration(took)}'
        if error:
            msg += f' -- {error}'
        if self.running:
            msg += f'; in flight: {", ".join(self.running)}'
        if eta is not None and self.finished < self.total:
            msg += f'; ETA {fmt_duration(eta)}'
        self._line(msg)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self._line(f'finished in {fmt_duration(self.clock() - self.t0)}')
