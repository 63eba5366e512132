"""``vireid new-method NAME [--from METHOD] [--out DIR]``: write a method plugin package to start
from (:mod:`harness.scaffold`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        'new-method',
        help='write an installable method plugin package to start a new method from',
        description='Write an installable plugin package for a new method: pyproject.toml with '
        'the vireid.methods entry point, its MethodSpec, a full and a demo config for '
        'SYSU-MM01, RegDB and LLCM, one registered loss to edit, a learning-margin test and a '
        'README skeleton. Then `pip install -e DIR` and `vireid methods` lists it '
        '(docs/adding-a-method.md).',
    )
    p.add_argument('name', metavar='NAME', help='method name: lower case, digits, _ (my_method)')
    p.add_argument(
        '--from',
        dest='base',
        default='agw',
        metavar='METHOD',
        help='installed method to start from (default agw: the generic CrossModalityReID '
        'composed of registered parts, written out; another method: its configs inherited '
        'with method_base)',
    )
    p.add_argument(
        '--out',
        type=Path,
        help='folder to write the package into; must not exist or be empty '
        '(default: ./vireid-NAME)',
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.scaffold import write_plugin

    out = args.out or Path(f'vireid-{args.name.replace("_", "-")}')
    made = write_plugin(args.name, out, base=args.base)
    print(f'wrote the {args.name} plugin package to {made.root}:')
    for path in made.files:
        print(f'  {path.relative_to(made.root)}')
    for note in made.notes:
        print(f'note: {note}')
    print(
        f'next: pip install -e {made.root}   (then `vireid methods` lists {args.name}; '
        f'`vireid train {args.name}_demo_regdb --data-root DIR` trains its demo)'
    )
    return 0
