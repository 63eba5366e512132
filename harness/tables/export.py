"""``build_tables``: a records folder in, every table file out."""

from __future__ import annotations

from pathlib import Path

from harness.atomic import write_text_atomic
from harness.engine.provenance import now
from harness.outputs import check_output
from harness.records import find_records
from harness.tables.build import collect, load_reported, make_tables
from harness.tables.html import leaderboard_page
from harness.tables.latex import latex_document, to_latex
from harness.tables.plots import DOT_PLOT_NAME, cmc_plots, dot_plot
from harness.tables.render import cells_csv, problems_markdown, to_csv, to_markdown

REPORTED_NAME = 'reported.csv'


def default_reported() -> Path | None:
    """The papers' numbers shipped with the package (``harness/tables/reported.csv``; the source
    tree's ``results/reported.csv`` links to it), or None when the installation lacks them."""
    path = Path(__file__).resolve().parent / REPORTED_NAME
    return path if path.is_file() else None


def missing_reported_warning() -> str:
    """What ``vireid tables`` and ``vireid leaderboard`` print when reported numbers are missing."""
    where = Path(__file__).resolve().parent / REPORTED_NAME
    return (
        f"WARNING: the papers' reported numbers ({where}) are not in this installation, so "
        'the tables show reproduced rows only. Reinstall vireid-bench (the file is package '
        'data), or '
        'pass --reported FILE (--reported "" silences this warning).'
    )


def build_tables(
    records: str | Path,
    out: str | Path,
    reported: str | Path | None = None,
    plots: bool = True,
    relative_to: str | Path | None = None,
) -> dict:
    """Write ``<name>.md/.tex/.csv`` per table, ``tables.tex`` (a document inputting every
    ``.tex``), ``cells.csv``, ``tables.md``, the plots (CMC curves and ``dotplot.png``; not with
    ``plots=False``) and the leaderboard page ``index.html`` into ``out``.

    Returns ``{'markdown': all tables as Markdown, 'comparison': the comparison table's Markdown
    (or ''), 'files': [paths], 'failed': [record paths], 'collection': Collection}``.
    """
    coll = collect(records, relative_to)
    rep = load_reported(reported)
    csv_name = Path(reported).name if reported else 'reported.csv'
    tables = make_tables(coll, rep, csv_name)
    out = Path(out)
    # Nothing is written until every file to be written is known not to be an input.
    names = [f'{t.name}.{ext}' for t in tables for ext in ('md', 'tex', 'csv')]
    names += ['tables.tex', 'cells.csv', 'tables.md', 'index.html', 'cmc_*.png', DOT_PLOT_NAME]
    inputs = [('record', p) for p in find_records(records)]
    check_output('--out', out, [('reported results file', reported), *inputs], writes=names)
    files = []
    sections = []
    for t in tables:
        md = to_markdown(t)
        sections.append(md)
        files.append(write_text_atomic(out / f'{t.name}.md', md))
        files.append(write_text_atomic(out / f'{t.name}.tex', to_latex(t)))
        files.append(write_text_atomic(out / f'{t.name}.csv', to_csv(t)))
    if tables:
        files.append(write_text_atomic(out / 'tables.tex', latex_document(t.name for t in tables)))
    files.append(write_text_atomic(out / 'cells.csv', cells_csv(coll, rep, csv_name)))
    problems = problems_markdown(coll)
    if not tables:
        sections.append('No finished run records were found.\n')
    if problems:
        sections.append(problems)
    everything = '\n'.join(sections)
    files.append(write_text_atomic(out / 'tables.md', everything))
    plot_files = cmc_plots(coll, out) if plots else []
    dots = dot_plot(coll, rep, out) if plots else None
    files += plot_files + ([dots] if dots else [])
    base = Path(relative_to) if relative_to is not None else Path(records)
    files.append(
        write_text_atomic(
            out / 'index.html',
            leaderboard_page(
                tables,
                coll,
                base,
                out,
                plots=plot_files,
                reported=reported,
                generated=now(),
                papers=rep,
                dotplot=dots,
            ),
        )
    )
    comparison = next((to_markdown(t) for t in tables if t.name == 'comparison'), '')
    return {
        'markdown': everything,
        'comparison': comparison,
        'problems': problems,
        'files': files,
        'failed': [p for p, _ in coll.failed],
        'collection': coll,
    }
