"""``vireid convert METHOD SRC DST``: an official checkpoint into the harness model's keys."""

from __future__ import annotations

import argparse
import json

from harness.convert import check_destination
from harness.plugins import get_method


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        'convert', help="map an official repository's checkpoint into the harness model"
    )
    p.add_argument('method', help='method name (see `vireid methods`)')
    p.add_argument('src', help='official checkpoint')
    p.add_argument(
        'dst', help='output harness checkpoint (loads with weights_only=True); never SRC itself'
    )
    p.add_argument('--force', action='store_true', help='replace DST if it exists')
    p.add_argument(
        '--trusted',
        action='store_true',
        help='the file holds pickled Python objects besides tensors and you trust its source: '
        'load it with weights_only=False (never the default)',
    )
    p.add_argument('--debug', action='store_true')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    convert = get_method(args.method).load_converter()
    check_destination(args.src, args.dst, force=args.force)
    summary = (
        convert(args.src, args.dst, trusted=True) if args.trusted else convert(args.src, args.dst)
    )
    print(json.dumps(summary, indent=2, default=str))
    return 0
