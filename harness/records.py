"""Run records: what a ``record.json`` is, and the one place records are written, found, read and
checked.

Every run (``vireid train``, a leaderboard run, a scored-only run) leaves one ``record.json`` in its
directory: its status (``running``, ``done``, ``failed``), where its weights come from
(``source``), the method and config, the protocol, the results of every setting and the
provenance. The engine writes it (:mod:`harness.engine.run`), the leaderboard's worker writes a
``failed`` one when the engine could not start (:mod:`harness.leaderboard.worker`), and the
tables, the page and the figures read it. Records are written atomically (:mod:`harness.atomic`),
so a reader sees the old file or the whole new one.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from harness.atomic import write_json_atomic
from protocols.datasets import DATASETS
from protocols.datasets.regdb import TRIALS as REGDB_SPLITS
from protocols.metrics import METRIC_KEYS

RECORD_NAME = 'record.json'
SCHEMA = 1
# How a record's (and a checkpoint's) ``config_hash`` was computed, stored beside it as
# ``config_hash_scheme`` (harness.engine.config.config_hash). 2: without the data root, the RegDB
# split and the runtime settings; absent (1): the split was hashed too, so the splits of one config
# had different hashes.
HASH_SCHEME = 2
# Where a record's weights come from (its ``source`` field; absent in older records: 'reproduced'):
# trained by the run, the run's initial weights scored untrained, or the authors' released weights.
RECORD_SOURCES = ('official', 'reproduced', 'untrained')


def run_leaf(dataset: str, split: int | None, source: str = 'reproduced') -> str:
    """The name of a run's directory: ``sysu``, ``regdb-split3``; a scored-only run of another
    record source ends in ``-<source>`` (``sysu-untrained``)."""
    leaf = dataset if split is None else f'{dataset}-split{split}'
    return leaf if source == 'reproduced' else f'{leaf}-{source}'


# --- create -----------------------------------------------------------------------------------


def check_source(source: str) -> None:
    """Refuse a record source that is not one of :data:`RECORD_SOURCES`."""
    if source not in RECORD_SOURCES:
        raise ValueError(f'record source must be one of {RECORD_SOURCES}, got {source!r}')


def create_record(source: str = 'reproduced', status: str = 'running', **fields: Any) -> dict:
    """A record of this :data:`SCHEMA`: ``schema``, ``status`` and ``source`` first, then
    ``fields`` in their order (the engine's: method, config, protocol, results, ...)."""
    return dict(schema=SCHEMA, status=status, source=source, **fields)


def error_info(err: BaseException, tb: str | None = None) -> dict[str, str]:
    """A record's ``error``: the type, the message and the traceback (by default the one being
    handled) of what the run failed with."""
    return dict(
        type=type(err).__name__,
        message=str(err),
        traceback=tb if tb is not None else traceback.format_exc(),
    )


# --- read and find ----------------------------------------------------------------------------


def read_record(path: str | os.PathLike) -> dict | None:
    """The record at ``path`` (a file or a run directory), or None when there is none.

    An unreadable record (not JSON, not an object) is reported as None too: the run is then
    treated as not finished and redone, which is the safe side.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RECORD_NAME
    try:
        with open(path, encoding='utf-8') as fh:
            data = json.load(fh)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def open_record(run_dir: Path) -> dict[str, Any]:
    """The record of ``run_dir`` for a reader that needs it whole: ``{}`` when there is none, and
    a damaged one raises a ValueError that names the file and the fix."""
    path = run_dir / RECORD_NAME
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(
            f'{path} is not valid JSON ({err}); it was damaged or written by something '
            f'else; run the run again to rewrite it'
        ) from None
    if not isinstance(record, dict):
        raise ValueError(f'{path} holds {type(record).__name__}, not a run record (a JSON object)')
    return record


def find_records(root: str | os.PathLike) -> list[Path]:
    """Every ``record.json`` under ``root``, sorted (deterministic table order and paths)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f'records folder {root} does not exist (pass the --out folder of a '
            f'leaderboard, or any folder holding run directories with record.json)'
        )
    return sorted(p for p in root.rglob(RECORD_NAME) if p.is_file())


# --- write ------------------------------------------------------------------------------------


def write_record(path: str | os.PathLike, record: dict) -> Path:
    """Write ``record`` to the file ``path`` atomically (readers never see half of it)."""
    return write_json_atomic(path, record)


def write_record_or_warn(path: Path, record: dict, quiet: bool = False) -> None:
    """Write the record. When even that fails (a full disk), say so instead of hiding the cause,
    unless ``quiet`` (the run never started: the error being raised tells the user already)."""
    try:
        write_json_atomic(path, record)
    except OSError as err:
        if quiet:
            return
        print(
            f'[vireid] could not write {path} ({err}); the run ended with status '
            f'{record.get("status")!r}: {(record.get("error") or {}).get("message", "")}',
            file=sys.stderr,
        )


# --- validate ---------------------------------------------------------------------------------
# Is a run record well-formed enough to tabulate? (A bad one is skipped with a warning, not fatal.)
# Records are JSON files anyone may edit, copy half-way or produce with another tool; one bad
# record must not cost the tables of all the others.


def _number(x: Any) -> bool:
    """A finite number (NaN and infinity are damage: no metric or count takes them)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _bad_metric(values: Any) -> str | None:
    """Why a ``{name: value}`` map of a record's results is bad (a metric outside 0..100 percent,
    something other than a finite number), or None."""
    if not isinstance(values, dict):
        return f'must map metric names to numbers, got {values!r:.80}'
    for name, value in values.items():
        if not _number(value):
            return f'{name} is {value!r}, not a finite number'
        if name in METRIC_KEYS and not 0 <= value <= 100:
            return f'{name} is {value}, outside 0..100 (metrics are percentages)'
    return None


def _kind(x: Any) -> str:
    return {dict: 'an object', list: 'a list', str: 'a string', type(None): 'null'}.get(
        type(x), f'a {type(x).__name__}'
    )


def record_problem(rec: Any) -> str | None:
    """Why ``rec`` (a parsed record.json) cannot be used, or ``None`` when it can."""
    if not isinstance(rec, dict):
        return f'the file holds {_kind(rec)}, not a record object'
    schema = rec.get('schema', SCHEMA)  # (records before the field: the first schema)
    if not (isinstance(schema, int) and not isinstance(schema, bool) and 1 <= schema <= SCHEMA):
        newer = isinstance(schema, int) and schema > SCHEMA
        return f'"schema" is {schema!r}; this vireid-bench reads record schema 1..{SCHEMA}' + (
            ' (the record was written by a newer version: upgrade vireid-bench)' if newer else ''
        )
    for key in ('entry', 'provenance', 'results'):
        if rec.get(key) is not None and not isinstance(rec[key], dict):
            return f'"{key}" is {_kind(rec[key])}, expected an object'
    if rec.get('error') is not None and not isinstance(rec['error'], (dict, str)):
        return f'"error" is {_kind(rec["error"])}, expected an object or a string'
    if rec.get('status') == 'done':
        if rec.get('dataset') not in DATASETS:
            return f'"dataset" is {rec.get("dataset")!r}, expected one of {list(DATASETS)}'
        split = rec.get('split')
        if rec['dataset'] == 'regdb' and split is not None and str(split) not in _SPLITS:
            return (
                f'"split" is {split!r}, expected a RegDB split number '
                f'{REGDB_SPLITS[0]}..{REGDB_SPLITS[-1]}'
            )
    for setting, res in (rec.get('results') or {}).items():
        where = f'results["{setting}"]'
        if not isinstance(res, dict):
            return f'{where} is {_kind(res)}, expected an object with mean/std/per_trial'
        for part in ('mean', 'std'):
            values = res.get(part)
            bad = None if values is None else _bad_metric(values)
            if bad:
                return f'{where}["{part}"]: {bad}'
        trials = res.get('per_trial')
        if trials is not None and not (
            isinstance(trials, list) and all(isinstance(t, dict) for t in trials)
        ):
            return f'{where}["per_trial"] must be a list of objects'
        for i, trial in enumerate(trials or ()):
            bad = _bad_metric(trial)
            if bad:
                return f'{where}["per_trial"][{i}]: {bad}'
        cmc = res.get('cmc')
        if cmc is not None and not (
            isinstance(cmc, list) and all(_number(v) and 0 <= v <= 100 for v in cmc)
        ):
            return f'{where}["cmc"] must be a list of percentages (finite numbers in 0..100)'
    return None


# A RegDB split as a record may write it (a number, or its text).
_SPLITS = {str(s) for s in REGDB_SPLITS}


# --------------------------------------------------------------------------------------------------
# Setting a run aside (a rerun never overwrites the run it replaces)

# What a run leaves in its directory (moved aside by set_aside); the log, the lock and run.json
# stay.
RUN_OUTPUTS = (
    RECORD_NAME,
    'record.prev.json',
    'config.py',
    'last_checkpoint',
    '*.pth',
    '*.pth.damaged*',
    'features.npz',
    'figures',
    'progress.json',
)
SUPERSEDED = 'superseded'


def run_outputs(work_dir: str | os.PathLike) -> list[Path]:
    """The files of a run in ``work_dir`` (:data:`RUN_OUTPUTS`), empty when it holds none."""
    return [p for pattern in RUN_OUTPUTS for p in sorted(Path(work_dir).glob(pattern))]


def set_aside(work_dir: Path, record: dict | None, who: str = 'leaderboard') -> Path:
    """Move the run in ``work_dir`` into ``work_dir/superseded/<time>-<config hash>/`` (its record
    as ``record.superseded.json``, so that no table counts it), so that a rerun neither resumes
    from its checkpoints nor overwrites them. ``who`` prefixes the message (``[leaderboard]``)."""
    work_dir = Path(work_dir)
    old_hash = str((record or {}).get('config_hash') or 'unknown')[:8]
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime('%Y%m%dT%H%M%S')
    aside = work_dir / SUPERSEDED / f'{stamp}-{old_hash}'
    aside.mkdir(parents=True, exist_ok=True)
    for path in run_outputs(work_dir):
        name = 'record.superseded.json' if path.name == RECORD_NAME else path.name
        os.replace(path, aside / name)
    print(
        f'[{who}] {work_dir}: the earlier run (config hash {old_hash}) was moved to {aside}',
        file=sys.stderr,
        flush=True,
    )
    return aside
