"""``vireid bench NAME [--json OUT] [--quick]``: run one micro-benchmark listed in
``harness.bench``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.bench import BENCHMARKS, load_benchmark


class _Help(argparse.Action):
    """``-h``/``--help``: after a benchmark that parses its own options (``vireid bench train
    --help``), that benchmark's help; otherwise this command's."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        name = getattr(namespace, 'name', None)
        module = load_benchmark(name) if name in BENCHMARKS else None
        own = getattr(module, 'build_parser', None)
        (own() if own is not None else parser).print_help()
        parser.exit()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'bench',
        add_help=False,
        help='run a micro-benchmark (timings, not tests)',
        description='Run a micro-benchmark and print its timings. Benchmarks: '
        + ', '.join(sorted(BENCHMARKS)),
    )
    parser.add_argument(
        '-h', '--help', action=_Help, help="show this help (after NAME: that benchmark's options)"
    )
    parser.add_argument(
        'name',
        metavar='NAME',
        choices=sorted(BENCHMARKS),
        help='benchmark to run: ' + ', '.join(sorted(BENCHMARKS)),
    )
    parser.add_argument(
        '--json',
        dest='json_out',
        metavar='OUT',
        type=Path,
        help='also write the result dict to this JSON file',
    )
    parser.add_argument(
        '--quick', action='store_true', help='tiny problem size (smoke test, timings meaningless)'
    )
    # Options a benchmark parses itself (`vireid bench train CONFIG --data-root DIR`) reach it as
    # args.options.
    parser.set_defaults(func=handle, takes_extra_args=True)


def handle(args: argparse.Namespace) -> int:
    module = load_benchmark(args.name)
    if hasattr(module, 'main'):  # a benchmark may own its whole command line
        return int(module.main(args) or 0)
    kwargs = dict(getattr(module, 'QUICK', {})) if args.quick else {}
    result = module.run(**kwargs)
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2) + '\n')
        print(f'wrote {args.json_out}')
    return 0
