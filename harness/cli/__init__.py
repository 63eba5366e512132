"""The ``vireid`` command: one module per sub-command, each exposing ``register(subparsers)``."""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Sequence

# Sub-command modules, in the order `vireid --help` lists them.
SUBCOMMANDS = (
    'data', 'score', 'methods', 'train', 'test', 'extract', 'convert', 'leaderboard', 'tables',
    'bench',
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='vireid', description='vireid-bench: visible-infrared person re-identification benchmark')
    parser.add_argument('--version', action=_Version, help='the version and where it is installed')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f'harness.cli.{name}').register(sub)
    return parser


class _Version(argparse.Action):
    """``--version`` printed as is (argparse's own action wraps long install paths)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f'vireid {version_text()}')
        parser.exit()


def version_text() -> str:
    """The harness version and where it was imported from (a source tree or an installed wheel)."""
    import harness
    return f'{harness.__version__} ({Path(harness.__file__).resolve().parent})'


def error_text(err: BaseException) -> str:
    """The message of an expected error as written, without the quotes ``str(KeyError)`` adds."""
    if isinstance(err, KeyError) and len(err.args) == 1 and isinstance(err.args[0], str):
        return err.args[0]
    return str(err)


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
        print(f'vireid {args.command}: error: {error_text(err)}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
