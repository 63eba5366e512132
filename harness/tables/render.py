"""Markdown and CSV renderings of a :class:`~harness.tables.build.Table`, and the long cell list."""

from __future__ import annotations

import pandas as pd

from harness.records import RECORD_SOURCES
from harness.tables.build import (
    METRICS,
    SETTINGS,
    Collection,
    Column,
    Entry,
    Reported,
    Table,
    grouped,
    matched_reported,
    ordered,
)


def frame(table: Table, with_records: bool = False) -> pd.DataFrame:
    """The table as displayed (strings), optionally with the record paths behind each row and the
    block each row belongs to (``reported``: the papers' numbers; ``runs``: this benchmark)."""
    head = (['Row'] if table.row_ids else []) + ['Method', 'Source']
    data = []
    for r in table.rows:
        line = ([r.row_id or ''] if table.row_ids else []) + [r.label, r.source]
        line += [c.text() if c is not None else '' for c in r.cells] + [r.notes]
        if with_records:
            line += [';'.join(r.records), 'runs' if r.from_records else 'reported']
        data.append(line)
    cols = (
        head
        + [c.header for c in table.columns]
        + ['Notes']
        + (['Records', 'Block'] if with_records else [])
    )
    return pd.DataFrame(data, columns=cols)


def _with_block_titles(table: Table, df: pd.DataFrame) -> pd.DataFrame:
    """The displayed table with a bold title row above each block (papers' numbers, this
    benchmark's runs) when it has both."""
    blocks = table.blocks()
    if len(blocks) < 2:
        return df
    parts = []
    for title, rows in blocks:
        label = [''] * len(df.columns)
        label[0] = f'**{title}**'
        parts += [pd.DataFrame([label], columns=df.columns), df.iloc[rows]]
    return pd.concat(parts, ignore_index=True)


def to_markdown(table: Table) -> str:
    # disable_numparse: '47.50' must stay as printed, not become 47.5.
    body = _with_block_titles(table, frame(table)).to_markdown(
        index=False, tablefmt='pipe', disable_numparse=True
    )
    # A leading '*' would start a nested Markdown list.
    notes = '\n'.join('- ' + ('\\' + n if n.startswith('*') else n) for n in table.footnotes)
    return f'**{table.title}**\n\n{body}\n\n{notes}\n'


def to_csv(table: Table) -> str:
    return frame(table, with_records=True).to_csv(index=False, lineterminator='\n')


def problems_markdown(coll: Collection) -> str:
    """Records that are not in the tables, and why."""
    parts = []
    if coll.failed:
        parts.append('**Failed runs (not tabulated)**\n')
        for path, rec in coll.failed:
            err = rec.get('error') or {}
            msg = (
                f'{err.get("type", "Error")}: {err.get("message", "")}'
                if isinstance(err, dict)
                else str(err)
            )
            msg = ' '.join(msg.split())
            if len(msg) > 300:
                msg = msg[:297] + '...'
            parts.append(f'- `{path}`: {msg}')
        parts.append('')
    if coll.incomplete:
        parts.append('**Unfinished runs (not tabulated)**\n')
        parts += [
            f'- `{p}`: status {rec.get("status")!r} (still training, or interrupted: the next '
            f'leaderboard resumes it)'
            for p, rec in coll.incomplete
        ] + ['']
    if coll.mixed_configs:
        parts.append('**Records of several configs (never averaged: one row per config)**\n')
        parts += [f'- {line}' for line in coll.mixed_configs] + ['']
    if coll.duplicates:
        parts.append('**Superseded duplicate records (a later record of the same run is used)**\n')
        parts += [f'- `{p}`' for p in coll.duplicates] + ['']
    if coll.unreadable:
        parts.append('**Unreadable records**\n')
        parts += [f'- `{p}`' for p in coll.unreadable] + ['']
    return '\n'.join(parts)


# fmt: off
CELL_COLUMNS = [
    'method', 'label', 'kind', 'row', 'source', 'dataset', 'setting', 'metric', 'mean', 'std', 'n',
    'comparable', 'optimistic', 'record_paths', 'protocol', 'printed_in', 'confidence',
]
# fmt: on


def cells_frame(
    coll: Collection, reported: list[Reported], csv_name: str = 'reported.csv'
) -> pd.DataFrame:
    """One line per number with where it comes from: first the papers' numbers that an entry
    matches (their reported.csv line, where they were printed and whether quoted), then per entry
    (and record source) the records behind each number, as the tables order them."""
    rows = []
    main, abl = ordered(coll.entries)
    groups = grouped(main) + grouped(abl)
    papers = {r.line: r for group in groups for r in matched_reported(group[0], reported)}
    for r in papers.values():
        for metric, value in r.values.items():
            rows.append(
                [r.method, r.method, 'paper', '', 'reported', r.dataset, r.setting, metric,
                 value, None, None, None, None, f'{csv_name}:{r.line}', r.eval_protocol,
                 r.printed_in, r.confidence]
            )  # fmt: skip
    for group in groups:
        by_source = {e.source: e for e in group}
        for source in RECORD_SOURCES:
            e = by_source.get(source)
            if e is None:
                continue
            for dataset, settings in SETTINGS.items():
                for setting in settings:
                    for metric in METRICS:
                        cell = e.cell(Column(dataset, setting, metric))
                        if cell is None:
                            continue
                        rows.append(
                            [e.method, e.label, e.kind, e.row or '', e.source, dataset, setting,
                             metric, cell.mean, cell.std, cell.n, cell.comparable, cell.optimistic,
                             ';'.join(cell.paths), _protocol(e, dataset, cell.n), '', 'record']
                        )  # fmt: skip
    df = pd.DataFrame(rows, columns=CELL_COLUMNS)
    df['n'] = df['n'].astype('Int64')  # counts stay integers beside the empty reported ones
    return df


def _protocol(entry: Entry, dataset: str, n: int | None) -> str:
    """How a record's number was evaluated, in the vocabulary of reported.csv's eval_protocol."""
    from harness.official import protocol_tag

    if dataset == 'regdb':
        rec = next(iter(entry.regdb.values()))[1]
    else:
        rec = getattr(entry, dataset)[1]
    return protocol_tag(rec, n)


def cells_csv(coll: Collection, reported: list[Reported], csv_name: str = 'reported.csv') -> str:
    return cells_frame(coll, reported, csv_name).to_csv(
        index=False, float_format='%.4f', lineterminator='\n'
    )
