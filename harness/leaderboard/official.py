"""The official twins of a leaderboard's training runs: one scored-only run per released checkpoint
(``--official``) or file given (``--official-checkpoint``); see :mod:`harness.official`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from harness.leaderboard.plan import RunSpec, scored_twin
from harness.official import (
    DOWNLOADS,
    TRUST_REASON,
    GivenCheckpoint,
    OfficialError,
    find_released,
)

if TYPE_CHECKING:
    from harness.plugins import MethodSpec


def official_runs(
    runs: Iterable[RunSpec],
    methods: Mapping[str, MethodSpec],
    out: str | Path,
    declared: bool,
    given: Iterable[GivenCheckpoint] = (),
    trusted: bool = False,
) -> list[RunSpec]:
    """The official twins of ``runs`` (training runs of the plan).

    ``declared``: a twin for each run whose config a released checkpoint of its method fits.
    ``given``: a twin for each non-ablation run of that method, dataset and split, scoring the
    file given. Each is refused with a clear message when it matches no planned run; any twin
    needs ``trusted``.
    """
    runs = [r for r in runs if r.trains]
    given = list(given)
    for g in given:
        if g.method not in methods:
            raise OfficialError(
                f'--official-checkpoint {g.method}:{g.target}: no method '
                f'{g.method!r} is installed; found: {", ".join(sorted(methods))}'
            )
        if not any(_fits_given(r, g) for r in runs):
            raise OfficialError(
                f'--official-checkpoint {g.method}:{g.target}: no planned run of '
                f'{g.method} on {g.target} (see --methods/--datasets/--kinds/'
                f'--regdb-splits, and --dry-run for the plan)'
            )
    downloads = Path(out) / DOWNLOADS
    twins = []
    for run in runs:
        mine = next((g for g in given if _fits_given(run, g)), None)
        if mine is not None:
            twins.append(
                replace(
                    scored_twin(run, 'official', mine.path),
                    trusted=trusted,
                    downloads=str(downloads),
                )
            )
        elif declared and find_released(methods.get(run.method), run) is not None:
            twins.append(
                replace(scored_twin(run, 'official'), trusted=trusted, downloads=str(downloads))
            )
    if twins and not trusted:
        raise OfficialError(
            f'{len(twins)} official run(s) planned ({twins[0].key}, ...), but {TRUST_REASON}.'
        )
    return twins


def _fits_given(run: RunSpec, given: GivenCheckpoint) -> bool:
    return (
        run.method == given.method
        and run.dataset == given.dataset
        and run.split == given.split
        and run.kind != 'ablation'
    )
