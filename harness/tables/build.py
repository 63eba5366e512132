"""Paper tables from run records alone: the comparison, multi-shot and ablation tables.

A table row is an *entry* (the ``entry`` dict of a method config: method, kind, label, row); its
SYSU-MM01 cells come from that entry's SYSU record, its RegDB cells from its RegDB split records and
its LLCM cells (a table of their own) from its LLCM record. Each cell is ``mean ± std``:

- SYSU-MM01 and LLCM: the mean and std over the trials of the one training run (from the record);
- RegDB: the mean and std (``ddof=0``) over the per-split means of the split records found, whose
  number is given in the row's notes.

Each entry's rows come in the order of :data:`ROW_SOURCES`: the matching rows of
``results/reported.csv`` (matched on the record's method title, the entry label or the method
name, with the paper's evaluation protocol), then one row per record ``source``: ``official``
(the authors' released weights scored here), ``reproduced`` (trained here) and ``untrained`` (the
same network with its initial weights, scored without training: the floor a method must beat).
Records with ``status != 'done'`` are listed, never tabulated.
"""

from __future__ import annotations

import csv
import math
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.errors import HarnessWarning, os_error_message
from harness.leaderboard.records import RECORD_SOURCES, find_records, read_record
from harness.tables.check import record_problem
from protocols.datasets import DATASETS, INFO
from protocols.datasets.regdb import TRIALS as REGDB_SPLITS
from protocols.evaluation import settings
from protocols.metrics import METRIC_KEYS, REPORTED_METRIC_KEYS

METRICS = METRIC_KEYS

# results/reported.csv column -> metric key
REPORTED_METRICS = {key.lower(): key for key in REPORTED_METRIC_KEYS}
SETTINGS = {dataset: tuple(settings(dataset)) for dataset in DATASETS}
REGDB_SPLIT_COUNT = len(REGDB_SPLITS)
COMPARABLE_MARK, OPTIMISTIC_MARK = '*', '†'
# Where a row's numbers come from, in table order. 'reported' rows come from results/reported.csv;
# the others from run records, whose ``source`` field names them (absent: 'reproduced').
ROW_SOURCES = ('reported', *RECORD_SOURCES)
# How a record source reads in a table's Source column (the others as themselves).
SOURCE_LABELS = {'official': 're-scored (official weights)'}
# Entry kinds shown without the paper's numbers: an ablation row is not the paper's model. A demo
# row keeps them, as the target the real run aims at; its notes say it ran on synthetic data.
NO_REPORTED_KINDS = ('ablation',)

# (dataset, setting) -> (group title, short prefix for one-line headers)
GROUPS = {
    ('sysu', 'all-single'): ('SYSU-MM01 all-search', 'All'),
    ('sysu', 'indoor-single'): ('SYSU-MM01 indoor-search', 'Indoor'),
    ('sysu', 'all-multi'): ('SYSU-MM01 all-search multi-shot', 'All-multi'),
    ('sysu', 'indoor-multi'): ('SYSU-MM01 indoor-search multi-shot', 'Indoor-multi'),
    ('regdb', 'v2t'): ('RegDB V→T', 'V→T'),
    ('regdb', 't2v'): ('RegDB T→V', 'T→V'),
    **{('llcm', setting): labels for setting, labels in INFO['llcm'].settings.items()},
}


@dataclass(frozen=True)
class Column:
    dataset: str
    setting: str
    metric: str

    @property
    def group(self) -> str:
        return GROUPS[(self.dataset, self.setting)][0]

    @property
    def header(self) -> str:
        return f'{GROUPS[(self.dataset, self.setting)][1]} {self.metric}'


def _columns(parts: Iterable[tuple[str, str, tuple[str, ...]]]) -> list[Column]:
    return [Column(d, s, m) for d, s, metrics in parts for m in metrics]


SINGLE_SHOT = _columns(
    [
        ('sysu', 'all-single', ('R1', 'R10', 'R20', 'mAP')),
        ('sysu', 'indoor-single', ('R1', 'R10', 'R20', 'mAP')),
        ('regdb', 'v2t', ('R1', 'mAP')),
        ('regdb', 't2v', ('R1', 'mAP')),
    ]
)
MULTI_SHOT = _columns(
    [
        ('sysu', 'all-multi', ('R1', 'R10', 'R20', 'mAP')),
        ('sysu', 'indoor-multi', ('R1', 'R10', 'R20', 'mAP')),
    ]
)
# The LLCM README's table: both directions, R1 / R10 / R20 / mAP.
LLCM = _columns(
    [
        ('llcm', 'ir2vis', ('R1', 'R10', 'R20', 'mAP')),
        ('llcm', 'vis2ir', ('R1', 'R10', 'R20', 'mAP')),
    ]
)
# Datasets trained once per config: a table entry holds one record of each.
SINGLE_RUN = ('sysu', 'llcm')


@dataclass
class Cell:
    mean: float
    std: float | None = None  # None: a single value (reported, or n == 1)
    n: int | None = None
    paths: tuple[str, ...] = ()
    comparable: bool = True
    optimistic: bool = False

    def text(self) -> str:
        s = f'{self.mean:.2f}'
        if self.std is not None:
            s += f' ± {self.std:.2f}'
        return s + self.marks()

    def marks(self) -> str:
        return ('' if self.comparable else COMPARABLE_MARK) + (
            OPTIMISTIC_MARK if self.optimistic else ''
        )


@dataclass
class Entry:
    """The records behind one row of a method: its reproduced row, or another record ``source``."""

    method: str
    kind: str
    label: str
    row: str | None
    title: str
    aliases: tuple[str, ...] = ()  # other names of the method in results/reported.csv
    sysu: tuple[str, dict] | None = None
    regdb: dict[int, tuple[str, dict]] = field(default_factory=dict)
    source: str = 'reproduced'  # one of RECORD_SOURCES
    llcm: tuple[str, dict] | None = None

    @property
    def group(self) -> tuple:
        """The table entry (method, kind, label, row) whose rows this entry's source fills."""
        return (self.method, self.kind, self.label, self.row)

    @property
    def key(self) -> tuple:
        return (*self.group, self.source)

    def names(self) -> set[str]:
        return {n.lower() for n in (self.title, self.label, self.method, *self.aliases) if n}

    def cell(self, col: Column) -> Cell | None:
        if col.dataset in SINGLE_RUN:
            slot = getattr(self, col.dataset)
            if slot is None:
                return None
            path, rec = slot
            res = (rec.get('results') or {}).get(col.setting)
            if not res or col.metric not in (res.get('mean') or {}):
                return None
            std = (res.get('std') or {}).get(col.metric)
            n = len(res.get('per_trial') or []) or None
            return Cell(
                float(res['mean'][col.metric]),
                None if (std is None or n == 1) else float(std),
                n,
                (path,),
                rec.get('comparable', True) is not False,
                bool(rec.get('optimistic')),
            )
        values, paths, comparable, optimistic = [], [], True, False
        for split in sorted(self.regdb):
            path, rec = self.regdb[split]
            res = (rec.get('results') or {}).get(col.setting)
            if not res or col.metric not in (res.get('mean') or {}):
                continue
            values.append(float(res['mean'][col.metric]))
            paths.append(path)
            comparable &= rec.get('comparable', True) is not False
            optimistic |= bool(rec.get('optimistic'))
        if not values:
            return None
        std = float(np.std(values)) if len(values) > 1 else None
        return Cell(float(np.mean(values)), std, len(values), tuple(paths), comparable, optimistic)

    def cmc(self, dataset: str, setting: str) -> list[float] | None:
        """The CMC curve (percent, rank 1..); RegDB: the mean curve over the splits."""
        if dataset in SINGLE_RUN:
            recs = [getattr(self, dataset)]
        else:
            recs = [self.regdb[s] for s in sorted(self.regdb)]
        curves = [((r[1].get('results') or {}).get(setting) or {}).get('cmc') for r in recs if r]
        curves = [c for c in curves if c]
        if not curves:
            return None
        n = min(len(c) for c in curves)
        return list(np.mean([c[:n] for c in curves], axis=0))

    def notes(self, datasets: Iterable[str] = DATASETS) -> str:
        parts = []
        for dataset, name in (('sysu', 'SYSU'), ('llcm', 'LLCM')):
            slot = getattr(self, dataset)
            if slot is None or dataset not in datasets:
                continue
            n = max(
                (
                    len(r.get('per_trial') or [])
                    for r in (slot[1].get('results') or {}).values()
                    if isinstance(r, dict)
                ),
                default=0,
            )
            parts.append(f'{name}: {n} trial{"s" * (n != 1)}')
        if self.regdb and 'regdb' in datasets:
            k = len(self.regdb)
            parts.append(
                f'RegDB: {k} split{"s" * (k != 1)}'
                if k >= REGDB_SPLIT_COUNT
                else (
                    f'RegDB: {k} of {REGDB_SPLIT_COUNT} splits '
                    f'({", ".join(map(str, sorted(self.regdb)))})'
                )
            )
        if self.kind == 'demo':
            parts.append('synthetic data (demo)')
        return '; '.join(parts)


@dataclass
class Reported:
    method: str
    dataset: str
    setting: str
    values: dict[str, float]
    venue: str
    year: str
    eval_protocol: str
    line: int  # line in reported.csv (header = 1): where the number comes from


@dataclass
class Row:
    label: str
    source: str
    cells: list[Cell | None]
    notes: str
    records: list[str]
    reproduced: bool
    row_id: str | None = None
    source_kind: str = 'reported'  # the ROW_SOURCES entry this row comes from


@dataclass
class Table:
    name: str
    title: str
    columns: list[Column]
    rows: list[Row]
    footnotes: list[str]
    row_ids: bool = False  # the ablation table leads with the row id


@dataclass
class Collection:
    """What a records folder holds, sorted into table entries."""

    root: Path
    entries: list[Entry]
    failed: list[tuple[str, dict]]
    incomplete: list[tuple[str, dict]]
    duplicates: list[str]
    unreadable: list[str]

    def records(self) -> dict[str, dict]:
        """Every tabulated record by the path shown in the tables."""
        out = {}
        for e in self.entries:
            for slot in (e.sysu, e.llcm):
                if slot:
                    out[slot[0]] = slot[1]
            out.update({path: rec for path, rec in e.regdb.values()})
        return out


def _finished(rec: dict) -> str:
    return str((rec.get('provenance') or {}).get('finished') or '')


def collect(records: str | Path, relative_to: str | Path | None = None) -> Collection:
    """Read every ``record.json`` under ``records`` (paths shown relative to ``relative_to``)."""
    root = Path(records)
    base = Path(relative_to) if relative_to is not None else root
    entries: dict[tuple, Entry] = {}
    failed, incomplete, duplicates, unreadable = [], [], [], []
    for path in find_records(root):
        rel = path.relative_to(base).as_posix() if path.is_relative_to(base) else str(path)
        try:
            rec = read_record(path)
            problem = 'not valid JSON' if rec is None else record_problem(rec)
        except OSError as err:
            rec, problem = None, os_error_message(err)
        if problem:
            # One bad record must not cost the tables of the others: list it, warn, go on.
            warnings.warn(
                f'skipping {path}: {problem}; fix or delete it (or rerun its run)',
                HarnessWarning,
                stacklevel=2,
            )
            unreadable.append(rel)
            continue
        status = rec.get('status')
        if status == 'failed':
            failed.append((rel, rec))
            continue
        if status != 'done':
            incomplete.append((rel, rec))
            continue
        e = dict(rec.get('entry') or {})
        method = str(e.get('method') or rec.get('method') or '?')
        source = str(rec.get('source') or 'reproduced')
        if source not in RECORD_SOURCES:
            unreadable.append(rel)
            continue
        entry = Entry(
            method=method,
            kind=str(e.get('kind') or 'full'),
            label=str(e.get('label') or method),
            row=e.get('row'),
            title=str(rec.get('method_title') or ''),
            aliases=tuple(rec.get('method_aliases') or ()),
            source=source,
        )
        entry = entries.setdefault(entry.key, entry)
        dataset = rec.get('dataset')
        if dataset in SINGLE_RUN:
            slot = getattr(entry, dataset)
            if slot is not None:
                duplicates.append(rel if _finished(rec) <= _finished(slot[1]) else slot[0])
            if slot is None or _finished(rec) > _finished(slot[1]):
                setattr(entry, dataset, (rel, rec))
        elif dataset == 'regdb':
            split = int(rec.get('split') or 1)
            slot = entry.regdb.get(split)
            if slot is not None:
                duplicates.append(rel if _finished(rec) <= _finished(slot[1]) else slot[0])
            if slot is None or _finished(rec) > _finished(slot[1]):
                entry.regdb[split] = (rel, rec)
        else:
            unreadable.append(rel)
    return Collection(root, list(entries.values()), failed, incomplete, duplicates, unreadable)


def load_reported(path: str | Path | None) -> list[Reported]:
    """Rows of ``results/reported.csv`` (empty cells = not reported)."""
    if path is None:
        return []
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f'reported results {path} not found (pass --reported, or --reported "" for none)'
        )
    out = []
    with open(path, newline='', encoding='utf-8') as fh:
        reader = csv.DictReader(fh)
        missing = {'method', 'dataset', 'setting', *REPORTED_METRICS} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(
                f'{path}: missing column(s) {", ".join(sorted(missing))}; see results/README.md'
            )
        for i, row in enumerate(reader, start=2):
            values = {}
            for col, metric in REPORTED_METRICS.items():
                text = (row.get(col) or '').strip()
                if text:
                    try:
                        values[metric] = float(text)
                    except ValueError:
                        raise ValueError(
                            f'{path} line {i}: column {col} is {text!r}, not a number'
                        ) from None
            out.append(
                Reported(
                    row['method'].strip(),
                    row['dataset'].strip(),
                    row['setting'].strip(),
                    values,
                    (row.get('venue') or '').strip(),
                    (row.get('year') or '').strip(),
                    (row.get('eval_protocol') or '').strip(),
                    i,
                )
            )
    return out


def _natural(text: str | None) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r'(\d+)', text or '')]


def _reported_rows(
    entry: Entry, reported: list[Reported], columns: list[Column], csv_name: str
) -> list[Row]:
    mine = [r for r in reported if r.method.lower() in entry.names()]
    wanted = {(c.dataset, c.setting) for c in columns}
    mine = [r for r in mine if (r.dataset, r.setting) in wanted]
    rows = []
    for venue in dict.fromkeys((r.venue, r.year) for r in mine):
        group = [r for r in mine if (r.venue, r.year) == venue]
        cells = []
        for c in columns:
            hit = next(
                (
                    r
                    for r in group
                    if (r.dataset, r.setting) == (c.dataset, c.setting) and c.metric in r.values
                ),
                None,
            )
            cells.append(
                Cell(hit.values[c.metric], paths=(f'{csv_name}:{hit.line}',)) if hit else None
            )
        if all(c is None for c in cells):
            continue
        protocols = ', '.join(dict.fromkeys(r.eval_protocol for r in group if r.eval_protocol))
        source = 'reported' + (f' ({" ".join(filter(None, venue))})' if any(venue) else '')
        rows.append(
            Row(
                entry.label,
                source,
                cells,
                f'protocol: {protocols}' if protocols else '',
                sorted({f'{csv_name}:{r.line}' for r in group}),
                reproduced=False,
            )
        )
    return rows


def _record_row(entry: Entry, columns: list[Column]) -> Row:
    cells = [entry.cell(c) for c in columns]
    paths = sorted({p for c in cells if c for p in c.paths})
    source = SOURCE_LABELS.get(entry.source, entry.source) + (
        ' (demo)' if entry.kind == 'demo' else ''
    )
    datasets = {c.dataset for c in columns}
    notes = entry.notes(datasets)
    if entry.source == 'official':  # the protocol beside the reported row's, and which weights
        from harness.official import official_note

        slots = [getattr(entry, ds) for ds in SINGLE_RUN if ds in datasets]
        recs = [slot[1] for slot in slots if slot] + (
            [rec for _, rec in entry.regdb.values()] if 'regdb' in datasets else []
        )
        notes = '; '.join(filter(None, [official_note(recs, len(entry.regdb)), notes]))
    return Row(
        entry.label,
        source,
        cells,
        notes,
        paths,
        reproduced=entry.source == 'reproduced',
        row_id=entry.row,
        source_kind=entry.source,
    )


def _entry_rows(
    group: list[Entry],
    reported: list[Reported],
    columns: list[Column],
    csv_name: str,
    with_reported: bool = True,
) -> list[Row]:
    """The rows of one table entry, in ROW_SOURCES order (a record row that fills no column is
    left out)."""
    by_source = {e.source: e for e in group}
    rows: list[Row] = []
    for source in ROW_SOURCES:
        if source == 'reported':
            if with_reported and group[0].kind not in NO_REPORTED_KINDS:
                rows += _reported_rows(group[0], reported, columns, csv_name)
        elif source in by_source:
            row = _record_row(by_source[source], columns)
            if any(c is not None for c in row.cells):
                rows.append(row)
    return rows


def grouped(entries: Iterable[Entry]) -> list[list[Entry]]:
    """Entries of the same table entry (method, kind, label, row) together, in first-seen order."""
    groups: dict[tuple, list[Entry]] = {}
    for e in entries:
        groups.setdefault(e.group, []).append(e)
    return list(groups.values())


def chance_note(
    rows: list[Row], columns: list[Column], coll_records: dict[str, dict]
) -> str | None:
    """'Chance Rank-1 (1 / gallery identities): ...' from the rows' records' ``gallery_ids``."""
    counts: dict[tuple[str, str], set[int]] = {}
    for r in rows:
        for path in r.records:
            rec = coll_records.get(path)
            for setting, n in ((rec or {}).get('gallery_ids') or {}).items():
                counts.setdefault((rec.get('dataset'), setting), set()).add(int(n))
    parts = []
    for key in dict.fromkeys((c.dataset, c.setting) for c in columns):
        ns = sorted(counts.get(key, ()))
        if not ns or key not in GROUPS:
            continue
        text = ', '.join(f'1/{n} = {100 / n:.2f}' for n in ns)
        parts.append(f'{GROUPS[key][1]} {text}')
    if not parts:
        return None
    return 'Chance Rank-1 (1 / gallery identities, %): ' + '; '.join(parts) + '.'


def _footnotes(
    rows: list[Row],
    columns: list[Column],
    with_reported: bool,
    records: dict[str, dict] | None = None,
) -> list[str]:
    cells = [c for r in rows if r.reproduced for c in r.cells if c]
    datasets = {c.dataset for c in columns}
    how = []
    if 'sysu' in datasets:
        how.append(
            'SYSU-MM01 (IR query → visible gallery): over the gallery trials of one training run'
        )
    if 'regdb' in datasets:
        how.append('RegDB: over the per-split means of the splits in the notes (std with ddof=0)')
    if 'llcm' in datasets:
        how.append(
            "LLCM: over the draws of one training run; VIS→IR as DEEN's test.py computes it "
            '(one sampled infrared image per identity and camera ranks every visible image)'
        )
    notes = ['Cells: mean ± std. ' + '; '.join(how) + '.']
    if any(not c.comparable for c in cells):
        notes.append(
            f'{COMPARABLE_MARK} not comparable: the run departs from the shared protocol '
            f'(comparable: false in its record).'
        )
    if any(c.optimistic for c in cells):
        notes.append(
            f'{OPTIMISTIC_MARK} optimistic: the checkpoint was selected by its test score '
            f'(best epoch on the test set).'
        )
    if with_reported and any(r.source_kind == 'reported' for r in rows):
        notes.append(
            'reported: as printed in the paper (results/reported.csv); '
            'its evaluation protocol in the notes.'
        )
    if any(r.source_kind == 'official' for r in rows):
        notes.append(
            "re-scored (official weights): the authors' released checkpoint, converted "
            "and scored under this protocol (its protocol and the file's md5 in the "
            'notes).'
        )
    if any(r.source_kind == 'untrained' for r in rows):
        notes.append(
            'untrained: the network of the reproduced row with the initial weights of its '
            'training run (same seed; random, or the ImageNet weights its config loads), '
            'scored without training.'
        )
    chance = chance_note(rows, columns, records or {})
    if chance:
        notes.append(chance)
    return notes


def _trim(columns: list[Column], rows: list[Row]) -> tuple[list[Column], list[Row]]:
    """Drop columns that no row fills (ablations often cover one dataset only)."""
    keep = [i for i in range(len(columns)) if any(r.cells[i] is not None for r in rows)]
    return [columns[i] for i in keep], [
        Row(
            r.label,
            r.source,
            [r.cells[i] for i in keep],
            r.notes,
            r.records,
            r.reproduced,
            r.row_id,
            r.source_kind,
        )
        for r in rows
    ]


def ordered(entries: Iterable[Entry]) -> tuple[list[Entry], list[Entry]]:
    """(non-ablation entries by label, ablation entries by row id: B2 before B10); the entries of
    one table entry are adjacent, in RECORD_SOURCES order."""
    entries = list(entries)
    rank = {s: i for i, s in enumerate(RECORD_SOURCES)}
    main = sorted(
        (e for e in entries if e.kind != 'ablation'),
        key=lambda e: (e.label.lower(), e.kind, e.method, rank[e.source]),
    )
    abl = sorted(
        (e for e in entries if e.kind == 'ablation'),
        key=lambda e: (_natural(e.row), e.method, e.label.lower(), rank[e.source]),
    )
    return main, abl


def make_tables(
    coll: Collection, reported: list[Reported], csv_name: str = 'reported.csv'
) -> list[Table]:
    """The comparison, multi-shot, LLCM and ablation tables (a table with no row is left out)."""
    main, abl = ordered(coll.entries)
    records = coll.records()
    tables = []
    rows: list[Row] = []
    for group in grouped(main):
        rows += _entry_rows(group, reported, SINGLE_SHOT, csv_name)
    if rows:
        tables.append(
            Table(
                'comparison',
                'Comparison: single-shot SYSU-MM01 (all-search, indoor-search) and RegDB '
                '(V→T: visible query → thermal gallery; T→V: thermal query → visible gallery)',
                SINGLE_SHOT,
                rows,
                _footnotes(rows, SINGLE_SHOT, True, records),
            )
        )
    rows = []
    for group in grouped(main):
        own = _entry_rows(group, reported, MULTI_SHOT, csv_name, with_reported=False)
        if own:  # reported multi-shot rows only beside a row of our own
            rows += _entry_rows(group, reported, MULTI_SHOT, csv_name)
    if rows:
        tables.append(
            Table(
                'multishot',
                'Multi-shot SYSU-MM01 (10 gallery images per identity and camera)',
                MULTI_SHOT,
                rows,
                _footnotes(rows, MULTI_SHOT, True, records),
            )
        )
    rows = []
    for group in grouped(main):
        rows += _entry_rows(group, reported, LLCM, csv_name)
    if rows:
        tables.append(
            Table(
                'llcm',
                'LLCM (IR→VIS: every infrared image ranks one sampled visible image per identity '
                "and camera; VIS→IR: as DEEN's test.py computes it, one sampled infrared image "
                'per identity and camera ranks every visible image)',
                LLCM,
                rows,
                _footnotes(rows, LLCM, True, records),
            )
        )
    rows = [
        row
        for group in grouped(abl)
        for row in _entry_rows(
            group, reported, SINGLE_SHOT + MULTI_SHOT + LLCM, csv_name, with_reported=False
        )
    ]
    if rows:
        cols, rows = _trim(SINGLE_SHOT + MULTI_SHOT + LLCM, rows)
        tables.append(
            Table(
                'ablation',
                'Ablations (ordered by row id)',
                cols,
                rows,
                _footnotes(rows, cols, False, records),
                row_ids=True,
            )
        )
    return tables


def best_cells(table: Table) -> set[tuple[int, int]]:
    """(row, column) of the best reproduced mean in each column (every tie is best)."""
    best = set()
    for j in range(len(table.columns)):
        vals = [
            (i, r.cells[j].mean)
            for i, r in enumerate(table.rows)
            if r.reproduced and r.cells[j] is not None
        ]
        if vals:
            top = max(v for _, v in vals)
            best |= {(i, j) for i, v in vals if math.isclose(v, top, rel_tol=0, abs_tol=1e-9)}
    return best
