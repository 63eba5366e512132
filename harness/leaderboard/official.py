"""The official twins of a leaderboard's training runs: one scored-only run per released checkpoint
(``--official``) or file given (``--official-checkpoint``); see :mod:`harness.official`.

One file per target: a method and dataset (``agw:sysu``) names one official file. Two different
files given for it are refused; a file given for a target that also has a declared release is
scored in its place (:func:`replaced_releases` names them); a file other than the one an official
run already scored is refused unless the run is redone (:func:`check_scored_files`).
"""

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
    md5_of,
)
from harness.records import read_record

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
    file given, in place of a declared release. Each is refused with a clear message when it
    matches no planned run, or when another file is given for the same target; any twin needs
    ``trusted``.
    """
    runs = [r for r in runs if r.trains]
    given = one_file_per_target(given)
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


def one_file_per_target(given: Iterable[GivenCheckpoint]) -> list[GivenCheckpoint]:
    """``given`` without repeats of one file; two files for one target are refused (which one
    the tables should show is the user's choice, not the order of the flags)."""
    first: dict[tuple[str, str], GivenCheckpoint] = {}
    for g in given:
        seen = first.setdefault((g.method, g.target), g)
        if seen.path != g.path:
            raise OfficialError(
                f'--official-checkpoint {g.method}:{g.target} is given twice, {seen.path} and '
                f'{g.path}: one file per target; score the other with --out elsewhere'
            )
    return list(first.values())


def replaced_releases(twins: Iterable[RunSpec], methods: Mapping[str, MethodSpec]) -> list[str]:
    """One line per twin that scores a given file where its method also declares a release."""
    lines = []
    for twin in twins:
        rel = find_released(methods.get(twin.method), twin) if twin.checkpoint else None
        if rel is not None:
            lines.append(
                f'{twin.key} scores the file given, {twin.checkpoint}, in place of the '
                f'declared release ({rel.url})'
            )
    return lines


def check_scored_files(twins: Iterable[RunSpec], rerun: bool) -> None:
    """Refuse a given file other than the one a finished official run scored: without
    ``rerun`` the run is done and the new file would be ignored."""
    if rerun:
        return
    for twin in twins:
        record = read_record(twin.record_path) if twin.checkpoint else None
        if (record or {}).get('status') != 'done':
            continue
        scored = (record.get('provenance') or {}).get('official') or {}
        if scored.get('md5') and scored['md5'] != md5_of(twin.checkpoint):
            raise OfficialError(
                f'{twin.key} already scored {scored.get("file", "another file")} '
                f'(md5 {scored["md5"]}); {twin.checkpoint} is another file: pass --rerun '
                f'--official-only to score it in its place (the earlier record is kept as '
                f'record.prev.json), or --out elsewhere'
            )
