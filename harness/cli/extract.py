"""``vireid extract CONFIG CHECKPOINT --out feats.npz``: test features for ``vireid score``."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.options import int_range, non_negative_int, positive_int
from protocols.datasets.regdb import TRIALS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        'extract',
        help='write the test features of a checkpoint (the .npz that vireid score reads)',
        description="Extract the feature of every test image the config's protocol scores "
        '(SYSU-MM01: '
        "all infrared queries and visible gallery candidates; RegDB: the split's test "
        'images; LLCM: every infrared and visible test image), exactly as vireid test computes '
        'them, into an .npz with "features" '
        '(N x D float32) and "paths" (relative to the dataset root).',
    )
    p.add_argument(
        'config', help="config file, or the name of an installed plugin's config (agw_sysu)"
    )
    p.add_argument('checkpoint', help='a checkpoint written by vireid train or vireid convert')
    p.add_argument('--out', required=True, type=Path, help='features file to write (.npz)')
    p.add_argument('--data-root', help='dataset root (overrides the config data_root)')
    p.add_argument(
        '--split',
        type=int_range(TRIALS[0], TRIALS[-1]),
        help="RegDB split the checkpoint was trained on (default: the config's)",
    )
    p.add_argument('--device', help='cpu, cuda, cuda:1, ... (default: cuda when available)')
    p.add_argument(
        '--batch-size',
        type=positive_int,
        help="images per forward pass (default: the config's test.batch_size)",
    )
    p.add_argument(
        '--num-workers', type=non_negative_int, default=0, help='dataloader workers (default 0)'
    )
    p.add_argument('--debug', action='store_true', help='show tracebacks')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.engine.config import load_config
    from harness.extraction import extract_checkpoint
    from harness.outputs import check_output
    from harness.plugins import discover, resolve_config
    from protocols.scoring import save_features

    discover()
    config = resolve_config(args.config)
    data_root = args.data_root or load_config(config).get('data_root')
    check_output(
        '--out',
        args.out,
        {'config': config, 'checkpoint': args.checkpoint},
        data={'dataset root': data_root},
    )
    feats = extract_checkpoint(
        config,
        args.checkpoint,
        data_root=args.data_root,
        split=args.split,
        device=args.device,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
    )
    save_features(args.out, feats.paths, feats.features)
    n, d = feats.features.shape
    print(
        f'wrote {args.out}: {n} test images x {d}-d features ({feats.dataset}'
        + (f' split {feats.protocol["split"]}' if feats.dataset == 'regdb' else '')
        + ')'
    )
    root = args.data_root or 'DATA_ROOT'
    print('score them with:\n' + '\n'.join(f'  {c}' for c in feats.score_commands(args.out, root)))
    return 0
