"""One leaderboard session: skip what is done, launch the rest, summarise, rebuild the tables.

Safe to start again at any time and to start twice on one folder: finished runs are never redone
(unless ``rerun``), runs another session holds are reported 'busy' and left alone, and the
summary and tables are rewritten under a folder-wide lock from whatever records exist.
"""

from __future__ import annotations

import datetime as _dt
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from harness.atomic import write_json_atomic, write_text_atomic
from harness.leaderboard.locks import FileLock
from harness.leaderboard.plan import RunSpec, retry_command, run_state
from harness.leaderboard.progress import Progress, fmt_duration

SUMMARY_LOCK = '.summary.lock'


DEMO_DATA_SEED = 0  # the synthetic datasets of `vireid leaderboard --demo` (the cost plan reads it)


def prepare_demo_data(
    out: str | Path, datasets: Iterable[str] = ('sysu', 'regdb'), seed: int = DEMO_DATA_SEED
) -> dict[str, str]:
    """Synthetic datasets under ``OUT/data/<dataset>``, generated once (a folder lock guards
    them)."""
    from protocols.datasets.synthetic import generate

    data = Path(out) / 'data'
    roots = {}
    with FileLock(data / '.lock', blocking=True):
        # generate() returns at once when the folder already holds this exact dataset.
        for ds in datasets:
            roots[ds] = str(generate(ds, data / ds, seed=seed))
    return roots


def run_leaderboard(
    runs: list[RunSpec],
    launcher,
    out: str | Path,
    *,
    rerun: bool = False,
    base_argv: list[str] | None = None,
    reported: str | Path | None = None,
    tables: bool = True,
    plots: bool = True,
    figures: bool = False,
    stream: TextIO | None = None,
) -> dict:
    """Run what is not done yet; returns the summary (also written to ``OUT/summary.{json,md}``).

    With ``figures``, ``vireid figures`` is drawn for every finished run before the tables, so
    that the page links them (``rerun`` redraws)."""
    out = Path(out)
    stream = stream if stream is not None else sys.stderr
    t0 = time.monotonic()
    states = {r.key: run_state(r) for r in runs}
    already = [r for r in runs if states[r.key] == 'done' and not rerun]
    busy = [r for r in runs if states[r.key] == 'busy']
    todo = [r for r in runs if r not in already and r not in busy]
    print(
        f'[leaderboard] {len(runs)} runs planned: {len(already)} already done, {len(busy)} busy '
        f'(held by another leaderboard), {len(todo)} to run',
        file=stream,
        flush=True,
    )
    progress = Progress(len(runs), parallel=getattr(launcher, 'parallel', 1), stream=stream)
    progress.finished = len(already) + len(busy)
    outcomes = launcher.launch(todo, progress) if todo else []
    progress.close()
    by_key = {r.key: r for r in runs}
    busy_keys = [r.key for r in busy] + [o['key'] for o in outcomes if o['status'] == 'busy']
    failed = [o for o in outcomes if o['status'] == 'failed']
    figure_failures = []
    if figures:
        from harness.figures.batch import draw_for_runs

        finished = [(r.work_dir, r.data_root) for r in runs if run_state(r) == 'done']
        figure_failures = [
            dict(run_dir=str(d), error=str(e)) for d, e in draw_for_runs(finished, redraw=rerun)
        ]
    summary = {
        'finished': _dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds'),
        'planned': len(runs),
        'already_done': [r.key for r in already] + [o['key'] for o in outcomes if o.get('already')],
        'done': [o['key'] for o in outcomes if o['status'] == 'done' and not o.get('already')],
        'failed': [{'key': o['key'], 'error': o['error'], 'record': o['record']} for o in failed],
        'busy': busy_keys,
        'retry': retry_command([by_key[o['key']] for o in failed], base_argv or [])
        if failed
        else None,
        'wall_s': round(time.monotonic() - t0, 1),
        'outcomes': outcomes,
        'tables_dir': str(out / 'tables') if tables else None,
        'figure_failures': figure_failures,
    }
    with FileLock(out / SUMMARY_LOCK, blocking=True, timeout=600):
        if tables:
            from harness.tables import build_tables

            (out / 'runs').mkdir(parents=True, exist_ok=True)
            built = build_tables(
                out / 'runs', out / 'tables', reported=reported, plots=plots, relative_to=out
            )
            summary['comparison'] = built['comparison']
            summary['problems'] = built['problems']
            summary['table_files'] = [str(p) for p in built['files']]
        write_json_atomic(
            out / 'summary.json', {k: v for k, v in summary.items() if k != 'comparison'}
        )
        write_text_atomic(out / 'summary.md', summary_text(summary))
    return summary


def summary_text(summary: dict) -> str:
    """What a person needs after a session: counts, failures with the retry command, busy runs."""
    lines = [
        f'# Leaderboard summary ({summary["finished"]})',
        '',
        f'- planned: {summary["planned"]} runs; done now: {len(summary["done"])}; '
        f'already done: {len(summary["already_done"])}; failed: {len(summary["failed"])}; '
        f'busy: {len(summary["busy"])}; wall time {fmt_duration(summary["wall_s"])}',
    ]
    if summary['failed']:
        lines += ['', '## Failed runs', '']
        lines += [f'- {f["key"]}: {f["error"]} (record: {f["record"]})' for f in summary['failed']]
        lines += [
            '',
            'Retry them (each resumes from its last checkpoint):',
            '',
            f'    {summary["retry"]}',
        ]
    if summary['busy']:
        lines += [
            '',
            '## Busy runs (another leaderboard holds them; start this command again later to '
            'pick them up)',
            '',
        ]
        lines += [f'- {k}' for k in summary['busy']]
    if summary.get('tables_dir'):
        lines += [
            '',
            f'Tables: {summary["tables_dir"]}/ (comparison, multishot, ablation as .md/.tex/.csv; '
            f'cells.csv; cmc_*.png; the page index.html)',
        ]
    return '\n'.join(lines) + '\n'
