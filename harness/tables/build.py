"""Paper tables from run records alone: the comparison, multi-shot and ablation tables.

A table row is an *entry* (the ``entry`` dict of a method config: method, kind, label, row); its
SYSU-MM01 cells come from that entry's SYSU record, its RegDB cells from its RegDB split records and
its LLCM cells (a table of their own) from its LLCM record. Each cell is ``mean ± std``:

- SYSU-MM01 and LLCM: the mean and std over the trials of the one training run (from the record);
- RegDB: the mean and std (``ddof=0``) over the per-split means of the split records found, whose
  number is given in the row's notes.

A table holds two blocks. First the papers' numbers: one row per method of ``results/reported.csv``
that an entry of the table matches (on the record's method title, the entry label, the method name
or an alias), each cell pointing to the CSV line that names where it was printed. Then this
benchmark's rows, per entry in the order of :data:`RECORD_SOURCES`: ``official`` (the authors'
released weights scored here), ``reproduced`` (trained here) and ``untrained`` (the same network
with its initial weights, scored without training: the floor a method must beat). The papers'
numbers never sit among the runs: beside demo runs (synthetic data) their block says it holds
real-data numbers. Records with ``status != 'done'`` are listed, never tabulated; so are damaged
ones (:func:`harness.records.record_problem`: a NaN metric, an unknown schema, a RegDB split
outside 1..10), with a warning naming the file.

A cell never mixes configs: records of one entry and dataset whose config hashes differ (a changed
config or ``--cfg-options``) are not averaged. The newest config's records stay in the entry's
row; each other config gets a row of its own, labelled ``LABEL [config <hash>]``, and a warning
and a footnote say so.
"""

from __future__ import annotations

import csv
import math
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from harness.errors import HarnessWarning, os_error_message
from harness.records import (
    HASH_SCHEME,
    RECORD_SOURCES,
    find_records,
    read_record,
    record_problem,
)
from protocols.datasets import DATASETS, INFO
from protocols.datasets.regdb import TRIALS as REGDB_SPLITS
from protocols.evaluation import settings
from protocols.metrics import METRIC_KEYS, REPORTED_METRIC_KEYS

METRICS = METRIC_KEYS

# results/reported.csv column -> metric key
REPORTED_METRICS = {key.lower(): key for key in REPORTED_METRIC_KEYS}
SETTINGS = {dataset: tuple(settings(dataset)) for dataset in DATASETS}
REGDB_SPLIT_COUNT = len(REGDB_SPLITS)
COMPARABLE_MARK, OPTIMISTIC_MARK, QUOTED_MARK = '*', '†', '‡'
# reported.csv ``confidence``: printed by the authors (their paper or README), or only by a later
# paper that quotes them (the original could not be read); the tables mark the second kind.
CONFIDENCES = ('original', 'quoted')
REPORTED_REQUIRED = ('method', 'dataset', 'setting', 'source', 'printed_in', 'confidence')
# Where a row's numbers come from, in table order. 'reported' rows come from results/reported.csv;
# the others from run records, whose ``source`` field names them (absent: 'reproduced').
ROW_SOURCES = ('reported', *RECORD_SOURCES)
# How a record source reads in a table's Source column (the others as themselves).
SOURCE_LABELS = {'official': 're-scored (official weights)'}
# Entry kinds whose method brings no paper numbers into a table: an ablation row is not the paper's
# model. A demo entry does, into the papers' block only, whose title then says that those numbers
# come from the real datasets and do not compare with synthetic runs.
NO_REPORTED_KINDS = ('ablation',)
REPORTED_BLOCK = 'Reported in the papers (real datasets)'
REPORTED_BLOCK_BESIDE_DEMO = (
    'Reported in the papers, on the real datasets (not comparable with the synthetic demo rows)'
)
RUNS_BLOCK = 'This benchmark'

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
    quoted: bool = False  # a reported number printed only by a paper quoting the method
    printed: str | None = None  # a reported number as its source prints it ('70.6', '47.50')

    def number(self) -> str:
        return self.printed if self.printed is not None else f'{self.mean:.2f}'

    def text(self) -> str:
        s = self.number()
        if self.std is not None:
            s += f' ± {self.std:.2f}'
        return s + self.marks()

    def marks(self) -> str:
        return (
            ('' if self.comparable else COMPARABLE_MARK)
            + (OPTIMISTIC_MARK if self.optimistic else '')
            + (QUOTED_MARK if self.quoted else '')
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
    # Set on the extra row of an older config (its hash; None: a record that names none).
    other_config: str | None = None

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
    """One line of ``reported.csv``: numbers of one method and setting, all printed in one place."""

    method: str
    dataset: str
    setting: str
    values: dict[str, float]
    venue: str
    year: str
    eval_protocol: str
    line: int  # line in reported.csv (header = 1): where the number comes from
    source: str = ''  # the paper whose numbers these are
    printed_in: str = ''  # where they are printed: paper + table, or README + line
    confidence: str = 'original'  # one of CONFIDENCES
    note: str = ''  # what a reader of the table must know (a disputed direction)
    printed: dict[str, str] = field(default_factory=dict)  # metric -> the number as printed

    @property
    def quoted(self) -> bool:
        return self.confidence == 'quoted'

    @property
    def key(self) -> tuple[str, str, str]:
        """The table row these numbers go to: the method as one paper reports it."""
        return (self.method, self.venue, self.year)

    def matches(self, entry: Entry) -> bool:
        return self.method.lower() in entry.names()


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
    demo: bool = False  # a run on synthetic data (an entry of kind 'demo')
    other_config: str | None = None  # the row of an entry's older config (Entry.other_config)

    @property
    def from_records(self) -> bool:
        """A row of this benchmark (its cells link to run records), not a paper's numbers."""
        return self.source_kind != 'reported'


@dataclass
class Table:
    name: str
    title: str
    columns: list[Column]
    rows: list[Row]
    footnotes: list[str]
    row_ids: bool = False  # the ablation table leads with the row id

    def blocks(self) -> list[tuple[str, list[int]]]:
        """``(title, row indices)`` of the papers' block and this benchmark's block, in table order;
        a table without reported rows is one untitled block."""
        reported = [i for i, r in enumerate(self.rows) if not r.from_records]
        runs = [i for i, r in enumerate(self.rows) if r.from_records]
        if not reported:
            return [('', runs)]
        demo = any(self.rows[i].demo for i in runs)
        out = [(REPORTED_BLOCK_BESIDE_DEMO if demo else REPORTED_BLOCK, reported)]
        if runs:
            every = all(self.rows[i].demo for i in runs)
            out.append((RUNS_BLOCK + (' (synthetic demo data)' if every else ''), runs))
        return out


@dataclass
class Collection:
    """What a records folder holds, sorted into table entries."""

    root: Path
    entries: list[Entry]
    failed: list[tuple[str, dict]]
    incomplete: list[tuple[str, dict]]
    duplicates: list[str]
    unreadable: list[str]
    # One line per (entry, dataset) whose records are of several configs (shown in several rows).
    mixed_configs: list[str] = field(default_factory=list)

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


def config_key(rec: dict) -> str | None:
    """The config hash a record's numbers may be averaged under: its ``config_hash`` when it was
    hashed the current way (:data:`~harness.records.HASH_SCHEME`), else None (an older hash
    covered the RegDB split, so it cannot tell two splits of one config apart)."""
    if rec.get('config_hash_scheme') != HASH_SCHEME:
        return None
    return rec.get('config_hash') or None


def collect(records: str | Path, relative_to: str | Path | None = None) -> Collection:
    """Read every ``record.json`` under ``records`` (paths shown relative to ``relative_to``)."""
    root = Path(records)
    base = Path(relative_to) if relative_to is not None else root
    # entry key -> (the entry, dataset -> config key -> [(path, record)])
    found: dict[tuple, tuple[Entry, dict[str, dict[str | None, list]]]] = {}
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
        dataset = rec.get('dataset')
        if source not in RECORD_SOURCES or not (dataset in SINGLE_RUN or dataset == 'regdb'):
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
        entry, by_dataset = found.setdefault(entry.key, (entry, {}))
        by_dataset.setdefault(dataset, {}).setdefault(config_key(rec), []).append((rel, rec))
    entries: list[Entry] = []
    mixed: list[str] = []
    for entry, by_dataset in found.values():
        others: dict[str | None, Entry] = {}
        for dataset, by_config in by_dataset.items():
            # The newest config fills the entry's own row; each other one a row of its own.
            order = sorted(
                by_config, key=lambda c: max(_finished(r) for _, r in by_config[c]), reverse=True
            )
            for config in order[1:]:
                if config not in others:
                    others[config] = replace(
                        entry,
                        label=f'{entry.label} [config {(config or "unrecorded")[:8]}]',
                        sysu=None,
                        regdb={},
                        llcm=None,
                        other_config=config or 'unrecorded',
                    )
                _fill(others[config], dataset, by_config[config], duplicates)
            _fill(entry, dataset, by_config[order[0]], duplicates)
            if len(order) > 1:
                hashes = ', '.join((c or 'unrecorded')[:8] for c in order)
                line = (
                    f'{entry.label} ({entry.source}): {dataset} records of {len(order)} configs '
                    f'(config hashes {hashes}, newest first) are not averaged: the newest stays '
                    f'in the row "{entry.label}", the others are rows "{entry.label} [config '
                    f'<hash>]"'
                )
                mixed.append(line)
                warnings.warn(line, HarnessWarning, stacklevel=2)
        entries += [entry, *others.values()]
    return Collection(root, entries, failed, incomplete, duplicates, unreadable, mixed)


def _fill(entry: Entry, dataset: str, records: list[tuple[str, dict]], duplicates: list) -> None:
    """Put the records of one config into ``entry``'s slot for ``dataset`` (RegDB: per split); of
    two records of one slot the later one is used and the other listed in ``duplicates``."""
    for rel, rec in records:
        if dataset in SINGLE_RUN:
            slot = getattr(entry, dataset)
        else:
            split = int(rec.get('split') or 1)
            slot = entry.regdb.get(split)
        if slot is not None:
            duplicates.append(rel if _finished(rec) <= _finished(slot[1]) else slot[0])
            if _finished(rec) <= _finished(slot[1]):
                continue
        if dataset in SINGLE_RUN:
            setattr(entry, dataset, (rel, rec))
        else:
            entry.regdb[split] = (rel, rec)


def load_reported(path: str | Path | None) -> list[Reported]:
    """Rows of ``results/reported.csv`` (empty cells = not reported), checked: every row names its
    source and where it was printed, a known dataset and setting (the vocabulary of ``protocols``),
    numbers in 0..100, and no cell twice. A bad row is refused with its file and line."""
    if path is None:
        return []
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f'reported results {path} not found (pass --reported, or --reported "" for none)'
        )
    out: list[Reported] = []
    seen: dict[tuple, int] = {}
    with open(path, newline='', encoding='utf-8') as fh:
        reader = csv.DictReader(fh)
        missing = set(REPORTED_REQUIRED) | set(REPORTED_METRICS)
        missing -= set(reader.fieldnames or ())
        if missing:
            raise ValueError(
                f'{path}: missing column(s) {", ".join(sorted(missing))}; see results/README.md'
            )
        for row in reader:
            rep = _reported_row(row, f'{path} line {reader.line_num}', reader.line_num)
            for metric in rep.values:
                key = (rep.method.lower(), rep.venue, rep.year, rep.dataset, rep.setting, metric)
                if key in seen:
                    raise ValueError(
                        f'{path} line {rep.line}: {metric} of {rep.method} ({rep.venue} '
                        f'{rep.year}) {rep.dataset} {rep.setting} is already given on line '
                        f'{seen[key]}; keep one (the original source before a quoting one)'
                    )
                seen[key] = rep.line
            out.append(rep)
    return out


def _reported_row(row: dict, where: str, line: int) -> Reported:
    text = {k: (v or '').strip() for k, v in row.items() if k is not None}
    empty = [k for k in REPORTED_REQUIRED if not text.get(k)]
    if empty:
        raise ValueError(
            f'{where}: no {", ".join(empty)}; every reported number needs the paper it '
            'comes from (source), where it is printed (printed_in: paper + table, or README + '
            f'line) and its confidence ({" or ".join(CONFIDENCES)}); see results/README.md'
        )
    dataset, setting = text['dataset'], text['setting']
    if dataset not in SETTINGS:
        raise ValueError(f'{where}: unknown dataset {dataset!r}; expected one of {list(SETTINGS)}')
    if setting not in SETTINGS[dataset]:
        raise ValueError(
            f'{where}: unknown {dataset} setting {setting!r}; expected one of '
            f'{list(SETTINGS[dataset])}'
        )
    if text['confidence'] not in CONFIDENCES:
        raise ValueError(
            f'{where}: confidence is {text["confidence"]!r}; expected one of {list(CONFIDENCES)}'
        )
    values, printed = {}, {}
    for col, metric in REPORTED_METRICS.items():
        cell = text.get(col, '')
        if not cell:
            continue
        try:
            value = float(cell)
        except ValueError:
            raise ValueError(f'{where}: column {col} is {cell!r}, not a number') from None
        if not 0 <= value <= 100:
            raise ValueError(
                f'{where}: column {col} is {cell}, outside 0..100 (percentages as printed)'
            )
        values[metric], printed[metric] = value, cell
    if not values:
        raise ValueError(f'{where}: no number in {", ".join(REPORTED_METRICS)}')
    return Reported(
        text['method'],
        dataset,
        setting,
        values,
        text.get('venue', ''),
        text.get('year', ''),
        text.get('eval_protocol', ''),
        line,
        source=text['source'],
        printed_in=text['printed_in'],
        confidence=text['confidence'],
        note=text.get('note', ''),
        printed=printed,
    )


def _natural(text: str | None) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r'(\d+)', text or '')]


def matched_reported(entry: Entry, reported: list[Reported]) -> list[Reported]:
    """The reported rows of ``entry``'s method (none for ablation entries)."""
    if entry.kind in NO_REPORTED_KINDS:
        return []
    return [r for r in reported if r.matches(entry)]


def _reported_rows(
    groups: list[list[Entry]], reported: list[Reported], columns: list[Column], csv_name: str
) -> list[Row]:
    """The papers' block: one row per (method, venue, year) that an entry of ``groups`` matches,
    in the entries' order; each cell points to the reported.csv line it was read from."""
    wanted = {(c.dataset, c.setting) for c in columns}
    mine: dict[tuple, list[Reported]] = {}
    for group in groups:
        for r in matched_reported(group[0], reported):
            if (r.dataset, r.setting) in wanted:
                mine.setdefault(r.key, [])
                if r not in mine[r.key]:
                    mine[r.key].append(r)
    rows = []
    for (method, venue, year), lines in mine.items():
        cells: list[Cell | None] = []
        for c in columns:
            hit = next(
                (
                    r
                    for r in lines
                    if (r.dataset, r.setting) == (c.dataset, c.setting) and c.metric in r.values
                ),
                None,
            )
            cells.append(
                Cell(
                    hit.values[c.metric],
                    paths=(f'{csv_name}:{hit.line}',),
                    quoted=hit.quoted,
                    printed=hit.printed.get(c.metric),
                )
                if hit
                else None
            )
        if all(c is None for c in cells):
            continue
        used = [r for r in lines if any(c and c.paths == (f'{csv_name}:{r.line}',) for c in cells)]
        protocols = ', '.join(dict.fromkeys(r.eval_protocol for r in used if r.eval_protocol))
        notes = [f'protocol: {protocols}'] if protocols else []
        notes += list(dict.fromkeys(r.note for r in used if r.note))
        where = ' '.join(filter(None, (venue, year)))
        label = 'reported' + (f' ({where})' if where else '')
        rows.append(
            Row(
                method,
                label,
                cells,
                '; '.join(notes),
                sorted({f'{csv_name}:{r.line}' for r in used}, key=_natural),
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
        demo=entry.kind == 'demo',
        other_config=entry.other_config,
    )


def _entry_rows(group: list[Entry], columns: list[Column]) -> list[Row]:
    """The record rows of one table entry, in RECORD_SOURCES order (a row that fills no column is
    left out)."""
    by_source = {e.source: e for e in group}
    rows = [_record_row(by_source[s], columns) for s in RECORD_SOURCES if s in by_source]
    return [r for r in rows if any(c is not None for c in r.cells)]


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
    reported = [r for r in rows if not r.from_records]
    if with_reported and reported:
        notes.append(
            "reported: the papers' numbers on the real datasets, as printed where "
            'results/reported.csv says (printed_in: paper + table, or README + line; each cell '
            "names its line); the paper's evaluation protocol in the notes."
        )
        if any(c.quoted for r in reported for c in r.cells if c):
            notes.append(
                f'{QUOTED_MARK} quoted: printed by a later paper that quotes the method, as the '
                "authors' own paper or README could not be read; which paper in "
                'results/reported.csv and cells.csv (printed_in).'
            )
        if any(r.demo for r in rows):
            notes.append(
                'The demo rows ran on synthetic data (vireid leaderboard --demo): they test the '
                "pipeline, and the papers' real-data numbers above are no target for them."
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
    if any(r.other_config for r in rows):
        notes.append(
            'LABEL [config <hash>]: runs of the entry under another config (another config hash '
            'in their records: a changed config file or --cfg-options), never averaged with the '
            "entry's newest config in the row LABEL."
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
            r.demo,
            r.other_config,
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
    """The comparison, multi-shot, LLCM and ablation tables (a table with no row is left out); the
    first three lead with the papers' block (:meth:`Table.blocks`)."""
    main, abl = ordered(coll.entries)
    records = coll.records()
    tables = []
    groups = grouped(main)
    runs = [row for group in groups for row in _entry_rows(group, SINGLE_SHOT)]
    if runs:
        rows = _reported_rows(groups, reported, SINGLE_SHOT, csv_name) + runs
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
    own = [group for group in groups if _entry_rows(group, MULTI_SHOT)]
    if own:  # the papers' multi-shot numbers only beside a multi-shot row of our own
        rows = _reported_rows(own, reported, MULTI_SHOT, csv_name) + [
            row for group in own for row in _entry_rows(group, MULTI_SHOT)
        ]
        tables.append(
            Table(
                'multishot',
                'Multi-shot SYSU-MM01 (10 gallery images per identity and camera)',
                MULTI_SHOT,
                rows,
                _footnotes(rows, MULTI_SHOT, True, records),
            )
        )
    own = [group for group in groups if _entry_rows(group, LLCM)]
    if own:  # the papers' LLCM numbers only beside an LLCM row of our own
        rows = _reported_rows(own, reported, LLCM, csv_name) + [
            row for group in own for row in _entry_rows(group, LLCM)
        ]
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
        row for group in grouped(abl) for row in _entry_rows(group, SINGLE_SHOT + MULTI_SHOT + LLCM)
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


def podium(table: Table) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """``(best, second)``: the (row, column) cells holding the highest and the second-highest
    reproduced mean of each column (every tie shares its place; reported, re-scored and untrained
    rows, and the rows of an entry's older configs, never compete)."""
    best: set[tuple[int, int]] = set()
    second: set[tuple[int, int]] = set()
    for j in range(len(table.columns)):
        vals = [
            (i, r.cells[j].mean)
            for i, r in enumerate(table.rows)
            if r.reproduced and not r.other_config and r.cells[j] is not None
        ]
        tops = sorted({round(v, 9) for _, v in vals}, reverse=True)
        for place, out in zip(tops[:2], (best, second), strict=False):
            out |= {(i, j) for i, v in vals if math.isclose(v, place, rel_tol=0, abs_tol=1e-9)}
    return best, second


def best_cells(table: Table) -> set[tuple[int, int]]:
    """(row, column) of the best reproduced mean in each column (every tie is best)."""
    return podium(table)[0]
