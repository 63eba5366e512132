"""The ``vireid`` command: one module per sub-command, each exposing ``register(subparsers)``."""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

# Sub-command modules, in the order `vireid --help` lists them.
SUBCOMMANDS = (
    'data', 'score', 'methods', 'train', 'test', 'convert', 'leaderboard', 'tables', 'figures',
    'bench',
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='vireid', description='vireid-bench: visible-infrared person re-identification benchmark')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f'harness.cli.{name}').register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, 'takes_extra_args', False):
        parser.error(f'unrecognized arguments: {" ".join(extra)}')
    args.options = extra
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as err:
        # Expected user errors carry a full message; no traceback for them.
        if getattr(args, 'debug', False):
            raise
        print(f'vireid {args.command}: error: {err}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
