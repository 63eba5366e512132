"""``vireid methods``: the installed method plugins and their configs."""

from __future__ import annotations

import argparse

from tabulate import tabulate

from harness.engine.config import method_config
from harness.plugins import discover


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        'methods', help='list installed method plugins (name, package, configs, datasets)'
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rows = []
    for name, spec in sorted(discover().items()):
        first = [name, spec.title, spec.distribution, 'yes' if spec.converter else 'no']
        for f in spec.config_files():
            cfg = method_config(f)  # a broken plugin config is named, not a traceback
            entry = cfg.get('entry', {})
            kind = entry.get('kind', '?') + (f' {entry["row"]}' if entry.get('row') else '')
            rows.append(first + [cfg.get('protocol_base', '?'), kind, f.name])
            first = [''] * 4
        if first[0]:
            rows.append(first + ['', '', '(no configs)'])
    headers = ['method', 'title', 'package', 'converter', 'dataset', 'kind', 'config']
    print(tabulate(rows, headers=headers))
    return 0
