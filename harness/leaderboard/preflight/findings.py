"""What a preflight check finds: one line each, naming the file or setting and the fix."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# In the order the preflight runs them: the cheap checks, then the measured ones.
AREAS = ('config', 'protocol', 'data', 'files', 'weights', 'disk', 'slurm', 'measure')


@dataclass(frozen=True)
class Finding:
    """One problem (``level`` 'error': a run would fail) or remark ('warning': worth acting on,
    runs go on; 'note': for the record, e.g. the counts of a synthetic stand-in).

    ``runs`` names the keys of the runs it concerns (empty: not one run in particular).
    """

    area: str
    message: str
    level: str = 'error'
    runs: tuple[str, ...] = ()

    @property
    def is_error(self) -> bool:
        return self.level == 'error'

    def line(self) -> str:
        """The message on one line (messages from other layers may hold line breaks)."""
        tag = f'[{self.area}]' if self.is_error else f'[{self.area}] {self.level}:'
        return f'{tag} {" ".join(self.message.split())}'


def errors(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.is_error]


def failing_runs(findings: Iterable[Finding], keys: Iterable[str]) -> dict[str, list[str]]:
    """``{run key: [area, ...]}`` of the runs an error stops (an error naming no run stops all)."""
    keys = list(keys)
    out: dict[str, list[str]] = {}
    for f in errors(findings):
        for key in f.runs or keys:
            if key in keys and f.area not in out.setdefault(key, []):
                out[key].append(f.area)
    return out


LEVELS = ('error', 'warning', 'note')


def format_findings(
    findings: Iterable[Finding], header: str = 'preflight', levels: Iterable[str] = LEVELS
) -> str:
    """The findings of the given levels, errors first, in check order; one line each, under a
    count of the problems."""
    levels = tuple(levels)
    shown = sorted(
        (f for f in findings if f.level in levels),
        key=lambda f: (LEVELS.index(f.level), AREAS.index(f.area)),
    )
    n_err = len(errors(shown))
    if not shown:
        return f'{header}: no problem found'
    head = f'{header}: {n_err} problem(s)' if n_err else f'{header}: no problem found'
    others = len(shown) - n_err
    head += f', {others} remark(s)' if others else ''
    return '\n'.join([head + ':', *(f'  {f.line()}' for f in shown)])
