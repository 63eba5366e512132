"""A progress display on stderr: runs done / total, the runs in flight, and an ETA.

The ETA is the mean wall time of the runs finished in this session times the runs left, divided
by the number of runs in flight at once; before the first run ends there is none to give.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO


def fmt_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f'{h}h{m:02d}m' if h else (f'{m}m{s:02d}s' if m else f'{s}s')


class Progress:
    def __init__(self, total: int, parallel: int = 1, stream: TextIO | None = None,
                 clock=time.monotonic):
        self.total = total
        self.parallel = max(1, parallel)
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.finished = 0
        self.durations: list[float] = []   # of runs that trained here (not skipped or busy)
        self.running: dict[str, float] = {}
        self.t0 = clock()

    def eta(self) -> float | None:
        if not self.durations:
            return None
        left = self.total - self.finished
        mean = sum(self.durations) / len(self.durations)
        # Runs in flight are partly done already.
        elapsed_now = sum(self.clock() - t for t in self.running.values())
        return max(0.0, (left * mean - elapsed_now) / min(self.parallel, max(left, 1)))

    def _line(self, text: str) -> None:
        print(f'[leaderboard {self.finished}/{self.total}] {text}', file=self.stream, flush=True)

    def start(self, key: str) -> None:
        self.running[key] = self.clock()
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
        self._line(f'finished in {fmt_duration(self.clock() - self.t0)}')
