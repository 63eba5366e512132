"""``vireid score FEATURES.npz --dataset sysu|regdb|llcm --root DIR``: metrics of saved features."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.cli.options import int_range
from protocols.datasets import DATASETS
from protocols.datasets.regdb import TRIALS
from protocols.metrics import DISTANCE_METRICS
from protocols.scoring import format_result, score
from protocols.trials import (
    LLCM_CONVENTIONAL,
    LLCM_SETTINGS,
    REGDB_DIRECTIONS,
    SYSU_MODES,
    SYSU_SAMPLERS,
    SYSU_SHOTS,
)


class _Deprecated(argparse._StoreAction):
    """An old spelling of an option: stored as the new one, with a warning naming it."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(
            f'vireid score: warning: {option_string} is deprecated; write --split (the RegDB '
            'split, as vireid extract names it)',
            file=sys.stderr,
        )
        super().__call__(parser, namespace, values, option_string)


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        'score',
        help='score saved features (npz: features N x D, paths N) on a test protocol',
        description='Score saved features on one protocol setting. '
        'The .npz holds "features" (N x D floats) '
        'and "paths" (N strings, relative to the dataset root) for every query image and gallery '
        'candidate; identities and cameras come from the dataset index.',
    )
    p.add_argument('features', type=Path, help='features file (.npz with arrays features, paths)')
    p.add_argument('--dataset', required=True, choices=DATASETS)
    p.add_argument('--root', required=True, type=Path, help='dataset root (the released layout)')
    p.add_argument('--mode', choices=SYSU_MODES, help='SYSU search mode (default: all)')
    p.add_argument(
        '--shots', type=int, choices=tuple(SYSU_SHOTS), help='SYSU gallery shots (default: 1)'
    )
    p.add_argument(
        '--sampler',
        choices=SYSU_SAMPLERS,
        help='SYSU gallery draw: official rand_perm_cam.mat (default) or seeded (AGW random.seed)',
    )
    p.add_argument(
        '--split',
        type=int_range(TRIALS[0], TRIALS[-1]),
        help=f'RegDB split {TRIALS[0]}..{TRIALS[-1]} (default: 1)',
    )
    # The name until 0.1: `vireid extract` and the leaderboard call the same thing a split.
    p.add_argument(
        '--trial',
        dest='split',
        type=int_range(TRIALS[0], TRIALS[-1]),
        action=_Deprecated,
        help=argparse.SUPPRESS,
    )
    p.add_argument(
        '--direction',
        choices=(*REGDB_DIRECTIONS, *LLCM_SETTINGS),
        help='RegDB direction (default: v2t); LLCM direction (default: ir2vis; vis2ir as DEEN '
        f'test.py computes it, the sampled infrared images ranking every visible image; '
        f'{LLCM_CONVENTIONAL}: visible probes, not comparable with published numbers)',
    )
    p.add_argument(
        '--distance',
        choices=DISTANCE_METRICS,
        default='cosine',
        help='cosine (L2-normalised), squared euclidean or inner_product (-q.g on the raw '
        'features) (default: cosine)',
    )
    p.add_argument('--json', type=Path, metavar='OUT', help='write the result as JSON to OUT')
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    if args.json is not None:
        from harness.outputs import check_output

        check_output(
            '--json', args.json, {'features file': args.features}, data={'dataset root': args.root}
        )
    result = score(
        args.features,
        args.dataset,
        args.root,
        mode=args.mode,
        shots=args.shots,
        sampler=args.sampler,
        trial=args.split,
        direction=args.direction,
        distance=args.distance,
    )
    print(format_result(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + '\n')
        print(f'wrote {args.json}')
    return 0
