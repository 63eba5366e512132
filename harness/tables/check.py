"""Is a run record well-formed enough to tabulate? (A bad one is skipped with a warning, not fatal.)

Records are JSON files anyone may edit, copy half-way or produce with another tool; one bad
record must not cost the tables of all the others.
"""

from __future__ import annotations

from typing import Any

from protocols.datasets import DATASETS


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _kind(x: Any) -> str:
    return {dict: 'an object', list: 'a list', str: 'a string', type(None): 'null'}.get(
        type(x), f'a {type(x).__name__}'
    )


def record_problem(rec: Any) -> str | None:
    """Why ``rec`` (a parsed record.json) cannot be used, or ``None`` when it can."""
    if not isinstance(rec, dict):
        return f'the file holds {_kind(rec)}, not a record object'
    for key in ('entry', 'provenance', 'results'):
        if rec.get(key) is not None and not isinstance(rec[key], dict):
            return f'"{key}" is {_kind(rec[key])}, expected an object'
    if rec.get('error') is not None and not isinstance(rec['error'], (dict, str)):
        return f'"error" is {_kind(rec["error"])}, expected an object or a string'
    if rec.get('status') == 'done':
        if rec.get('dataset') not in DATASETS:
            return f'"dataset" is {rec.get("dataset")!r}, expected one of {list(DATASETS)}'
        split = rec.get('split')
        if (
            rec['dataset'] == 'regdb'
            and split is not None
            and not (isinstance(split, int) and not isinstance(split, bool) or str(split).isdigit())
        ):
            return f'"split" is {split!r}, expected a RegDB split number 1..10'
    for setting, res in (rec.get('results') or {}).items():
        where = f'results["{setting}"]'
        if not isinstance(res, dict):
            return f'{where} is {_kind(res)}, expected an object with mean/std/per_trial'
        for part in ('mean', 'std'):
            values = res.get(part)
            if values is not None and (
                not isinstance(values, dict) or not all(_number(v) for v in values.values())
            ):
                return f'{where}["{part}"] must map metric names to numbers, got {values!r:.80}'
        trials = res.get('per_trial')
        if trials is not None and not (
            isinstance(trials, list) and all(isinstance(t, dict) for t in trials)
        ):
            return f'{where}["per_trial"] must be a list of objects'
        cmc = res.get('cmc')
        if cmc is not None and not (isinstance(cmc, list) and all(_number(v) for v in cmc)):
            return f'{where}["cmc"] must be a list of numbers'
    return None
