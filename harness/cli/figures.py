"""``vireid figures RUN_DIR``: ranked-retrieval grids and feature-distribution plots of a run."""

from __future__ import annotations

import argparse

from harness.cli.options import int_range, positive_int, seed_int
from protocols.trials import (
    LLCM_NUM_TRIALS,
    LLCM_SETTINGS,
    REGDB_DIRECTIONS,
    SYSU_MODES,
    SYSU_NUM_TRIALS,
    SYSU_SHOTS,
)

LAST_TRIAL = max(SYSU_NUM_TRIALS, LLCM_NUM_TRIALS) - 1

EPILOG = """writes into OUT (default RUN_DIR/figures):
  retrieval_<setting>_<trial|split>_<pick>.png/.csv  queries and their top-K gallery images
  tsne.png        t-SNE of a few identities, trained beside untrained (random init, the run's seed)
  distances.png   same- vs different-identity infrared-visible distances, with their overlap
  index.json      what each file shows (linked by the leaderboard page)
  features/       features extracted for the figures (the .npz format `vireid score` reads)

examples:
  vireid figures work_dirs/agw_demo_sysu
  vireid figures OUT/runs/agw/agw_demo_regdb/regdb-split1 --direction t2v --pick failures
"""


def register(sub: argparse._SubParsersAction) -> None:
    from harness.figures.retrieval import PICKS

    p = sub.add_parser(
        'figures',
        help='retrieval grids and feature-distribution plots of a run',
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        'run_dir', metavar='RUN_DIR', help='a run directory of `vireid train` or of the leaderboard'
    )
    p.add_argument('--out', help='where the figures go (default RUN_DIR/figures)')
    p.add_argument(
        '--queries',
        type=positive_int,
        default=8,
        help='queries in the retrieval grid (default %(default)s)',
    )
    p.add_argument(
        '--topk',
        type=positive_int,
        default=10,
        help='gallery images per query (default %(default)s)',
    )
    p.add_argument(
        '--ids', type=positive_int, default=8, help='identities in the t-SNE (default %(default)s)'
    )
    p.add_argument(
        '--seed',
        type=seed_int,
        default=0,
        help='seed of the query, identity and image draws (default %(default)s)',
    )
    p.add_argument(
        '--pick',
        choices=PICKS,
        default='random',
        help='queries: a seeded random draw, the hardest (latest first correct match), or '
        'rank-1 failures (default %(default)s)',
    )
    proto = p.add_argument_group('protocol setting of the grid')
    proto.add_argument('--mode', choices=SYSU_MODES, help='SYSU search mode (default all)')
    proto.add_argument(
        '--shots', type=int, choices=tuple(SYSU_SHOTS), help='SYSU gallery shots (default 1)'
    )
    proto.add_argument(
        '--trial',
        type=int_range(0, LAST_TRIAL),
        help=f'SYSU gallery trial or LLCM draw 0..{LAST_TRIAL} (default 0)',
    )
    proto.add_argument(
        '--direction',
        choices=(*REGDB_DIRECTIONS, *LLCM_SETTINGS),
        help="RegDB direction of the run's split (default v2t: visible query); LLCM direction "
        '(default ir2vis: infrared probes)',
    )
    src = p.add_argument_group('sources')
    src.add_argument('--data-root', help="dataset root (default: the run config's data_root)")
    src.add_argument(
        '--checkpoint', help="draw this checkpoint instead of the run's own (and its kept features)"
    )
    src.add_argument('--device', help='cpu or cuda (default cuda when available)')
    p.add_argument('--debug', action='store_true', help='show tracebacks')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.figures import draw_figures

    manifest = draw_figures(
        args.run_dir,
        args.out,
        queries=args.queries,
        topk=args.topk,
        ids=args.ids,
        seed=args.seed,
        pick=args.pick,
        data_root=args.data_root,
        checkpoint=args.checkpoint,
        device=args.device,
        mode=args.mode,
        shots=args.shots,
        trial=args.trial,
        direction=args.direction,
    )
    for entry in manifest['figures']:
        print(f'{manifest["out"]}/{entry["file"]}: {entry["caption"]}')
    print(f'manifest: {manifest["out"]}/index.json')
    return 0
