"""``vireid tables``: the paper tables, plots and page, rebuilt from run records alone."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        'tables',
        help='paper tables (Markdown, LaTeX, CSV), plots and the page from run records',
        description=__doc__ + '\n\nEvery record.json under --records (searched recursively) '
        'is read; failed and unfinished runs are listed, not tabulated.',
    )
    p.add_argument(
        '--records',
        required=True,
        help='folder holding record.json files (e.g. a leaderboard --out)',
    )
    p.add_argument('--out', help='where the tables go (default RECORDS/tables)')
    p.add_argument(
        '--reported',
        help='reported results CSV (default: the one shipped with '
        'vireid-bench, results/reported.csv; "" for none)',
    )
    p.add_argument('--no-plots', action='store_true', help='skip the plots (CMC curves, dot plot)')
    p.add_argument('--debug', action='store_true', help='show tracebacks')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.tables.export import build_tables, default_reported, missing_reported_warning

    out = Path(args.out) if args.out else Path(args.records) / 'tables'
    reported = (args.reported or None) if args.reported is not None else default_reported()
    if args.reported is None and reported is None:
        print(missing_reported_warning(), file=sys.stderr)
    built = build_tables(args.records, out, reported=reported, plots=not args.no_plots)
    print(built['markdown'])
    print(f'{len(built["files"])} files written to {out}/; the page: {out / "index.html"}')
    return 0
