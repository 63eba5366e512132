"""``vireid methods``: the installed method plugins and their configs."""
from __future__ import annotations

import argparse

from mmengine.config import Config
from tabulate import tabulate

from harness.plugins import discover


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser('methods', help='list installed method plugins (name, package, configs, datasets)')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rows = []
    for name, spec in sorted(discover().items()):
        files = spec.config_files()
        datasets, configs = set(), []
        for f in files:
            cfg = Config.fromfile(str(f))
            datasets.add(cfg.get('protocol_base', '?'))
            configs.append(f'{f.stem} ({cfg.get("entry", {}).get("kind", "?")})')
        rows.append([name, spec.title, spec.distribution, ', '.join(sorted(datasets)), len(files),
                     spec.converter is not None])
        for c in configs:
            rows.append(['', '', '', '', c, ''])
    print(tabulate(rows, headers=['method', 'title', 'package', 'datasets', 'configs', 'converter']))
    return 0
