"""A run's results as a small text table (mean ± std over trials, percent)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tabulate import tabulate

COLUMNS = ('R1', 'R5', 'R10', 'R20', 'mAP', 'mINP')


def format_results(results: Mapping[str, Mapping[str, Any]]) -> str:
    rows = []
    for setting, res in results.items():
        n = len(res['per_trial'])
        cells = [
            f'{res["mean"][k]:.2f} ± {res["std"][k]:.2f}' if n > 1 else f'{res["mean"][k]:.2f}'
            for k in COLUMNS
        ]
        rows.append([setting, n, *cells])
    return tabulate(rows, headers=['setting', 'trials', *COLUMNS])


def print_record_summary(record: Mapping[str, Any]) -> None:
    print(
        f'{record.get("method_title", record.get("method"))} on {record["dataset"]}'
        + (f' split {record["split"]}' if record.get('split') else '')
        + ('' if record.get('comparable', True) else '  [NON-COMPARABLE: protocol changed]')
        + ('  [OPTIMISTIC: test-set model selection]' if record.get('optimistic') else '')
    )
    print(format_results(record['results']))
    print(f'record: {record["work_dir"]}/record.json')
