"""The ``vireid`` command: one module per sub-command, each exposing ``register(subparsers)``."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

from harness.errors import HarnessWarning, StopSignal, describe, exit_code

# Sub-command modules, in the order `vireid --help` lists them.
SUBCOMMANDS = (
    'data',
    'score',
    'methods',
    'train',
    'test',
    'extract',
    'convert',
    'leaderboard',
    'tables',
    'figures',
    'bench',
    'cache',
    'new_method',
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='vireid',
        description='vireid-bench: visible-infrared person re-identification benchmark',
    )
    # Read by main() before parsing, so it works after any (sub-)command too.
    parser.add_argument(
        '--debug',
        action='store_true',
        help='show the traceback of an error instead of its one-line message',
    )
    parser.add_argument('--version', action=_Version, help='the version and where it is installed')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f'harness.cli.{name}').register(sub)
    return parser


@contextlib.contextmanager
def _one_line_warnings(command: str) -> Iterator[None]:
    """The project's own warnings (categories defined in harness/protocols/methods, e.g.
    :class:`~harness.errors.HarnessWarning`) print as ``vireid CMD: warning: ...`` without a
    source line; other libraries' warnings as usual."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        ours = category.__module__.split('.')[0] in ('harness', 'protocols', 'methods')
        if issubclass(category, HarnessWarning) or ours:
            print(
                f'vireid {command}: warning: {message}', file=sys.stderr if file is None else file
            )
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = default


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. An ordinary fault (see :mod:`harness.errors`) prints one message and
    returns 2 (1 for a failed run); ``--debug``, accepted by every command, shows the traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # A file name that is not UTF-8 (held as surrogates, os.fsdecode) must not end a command that
    # prints it: shown escaped, as Python's stderr shows it, the output stays valid text.
    if getattr(sys.stdout, 'errors', None) == 'strict' and hasattr(sys.stdout, 'reconfigure'):
        sys.stdout.reconfigure(errors='backslashreplace')
    debug = '--debug' in argv
    argv = [a for a in argv if a != '--debug']
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, 'takes_extra_args', False):
        parser.error(f'unrecognized arguments: {" ".join(extra)}')
    args.options = extra
    args.debug = debug
    with _one_line_warnings(args.command):
        try:
            return int(args.func(args) or 0)
        except KeyboardInterrupt:
            if debug:
                raise
            print(f'vireid {args.command}: interrupted', file=sys.stderr)
            return 130
        except StopSignal as err:  # a SIGTERM before a run could record it
            if debug:
                raise
            print(f'vireid {args.command}: stopped: {err}', file=sys.stderr)
            return err.exit_code
        except Exception as err:
            message = None if debug else describe(err)
            if message is None:  # --debug, or a bug: keep the traceback
                raise
            print(f'vireid {args.command}: error: {message}', file=sys.stderr)
            return exit_code(err)


if __name__ == '__main__':
    sys.exit(main())
