"""``vireid data check|fetch|synth``: validate a dataset, download an archive, write a synthetic
dataset."""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tabulate import tabulate

from harness.cli.options import float_range, positive_int, seed_int
from protocols.datasets import DATASETS, load_dataset
from protocols.datasets.base import DatasetLayoutError
from protocols.datasets.images import raise_for_problems, verify_images
from protocols.datasets.synthetic import DEFAULT_GAP, DEFAULT_LOW_LIGHT, SIZES


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        'data',
        help='check, fetch or synthesise a dataset',
        description='Dataset utilities: check a layout, fetch an archive, write a '
        'synthetic dataset in the real layout.',
    )
    sub = p.add_subparsers(dest='action', metavar='ACTION', required=True)

    check = sub.add_parser('check', help='validate a dataset folder and print its statistics')
    check.add_argument('--dataset', required=True, choices=DATASETS)
    check.add_argument('--root', required=True, type=Path)
    check.add_argument(
        '--quick', action='store_true', help='only read image headers (default: decode all)'
    )
    check.add_argument(
        '--workers', type=positive_int, default=4, help='threads decoding images (default: 4)'
    )
    check.set_defaults(func=run_check)

    fetch = sub.add_parser(
        'fetch', help='download a Google Drive archive you were given and extract it'
    )
    fetch.add_argument('source', metavar='URL_OR_ID', help='Google Drive share link or file id')
    fetch.add_argument(
        '--out', required=True, type=Path, help='folder to download and extract into'
    )
    fetch.add_argument('--md5', help='expected md5 of the archive (checked before extracting)')
    fetch.set_defaults(func=run_fetch)

    synth = sub.add_parser(
        'synth',
        help='write a synthetic dataset in the real layout',
        description='Write a synthetic dataset in the real on-disk layout: the small, learnable '
        "demo dataset (--size demo), or a real-size stand-in with the release's identities, "
        'image counts, splits and comparable image sizes (--size full) to rehearse a full run '
        'without the real data (docs/synthetic-data.md).',
    )
    synth.add_argument('--dataset', required=True, choices=DATASETS)
    synth.add_argument('--out', required=True, type=Path)
    synth.add_argument(
        '--size',
        choices=SIZES,
        default='demo',
        help="demo: small and learnable (default); full: the release's structure and size",
    )
    synth.add_argument(
        '--ids',
        type=positive_int,
        help='--size demo: number of identities (default: the generator default)',
    )
    synth.add_argument(
        '--scale',
        type=float_range(0, 1, low_open=True),
        default=1.0,
        metavar='F',
        help="--size full: keep this fraction of the release's identities, each with its real "
        'image counts (default 1: all; e.g. 0.05 for a quick test)',
    )
    synth.add_argument(
        '--workers',
        type=positive_int,
        metavar='N',
        help='processes rendering in parallel (default: the CPU count); the files are the same '
        'for any N',
    )
    synth.add_argument('--seed', type=seed_int, default=0)
    synth.add_argument(
        '--gap',
        type=float_range(0, 1),
        metavar='G',
        help="modality gap in [0, 1]: each material's infrared tone is (1 - G) x "
        'the grey level of its colour + G x an independent draw (0: infrared '
        '= grey image of the visible; 1: infrared independent of colour; '
        f'default {DEFAULT_GAP}, see docs/synthetic-data.md)',
    )
    synth.add_argument(
        '--low-light',
        type=float_range(0, 1),
        metavar='L',
        help='LLCM only: how dark, noisy and washed-out the colour images are, in [0, 1] (0: all '
        f'well lit; default {DEFAULT_LOW_LIGHT}, see docs/synthetic-data.md)',
    )
    synth.set_defaults(func=run_synth)
    return p


def _print_table(title: str, rows: list[dict]) -> None:
    print(f'\n{title}')
    print(tabulate(rows, headers='keys'))


def _sysu_galleries(ds) -> list[dict]:
    from protocols.trials import (
        SYSU_MODES,
        SYSU_SHOTS,
        load_rand_perm,
        official_gallery,
        seeded_gallery,
        sysu_setting,
    )

    try:
        perm = load_rand_perm(ds.rand_perm_path)
    except DatasetLayoutError:  # the check fails at the end, with the message
        perm = None
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # stray files are counted in the table below instead
        for mode in SYSU_MODES:
            for shots in SYSU_SHOTS:
                row = {'setting': sysu_setting(mode, shots)}
                if perm is not None:
                    row['official gallery (trial 0)'] = len(
                        official_gallery(ds, perm, mode, shots, 0)
                    )
                row['seeded gallery (trial 0)'] = len(seeded_gallery(ds, mode, shots, 0))
                rows.append(row)
    return rows


def _llcm_draws(ds) -> list[dict]:
    from protocols.datasets.base import Modality
    from protocols.trials import llcm_draw

    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # stray files are reported below instead
        for modality, name in ((Modality.VISIBLE, 'visible'), (Modality.INFRARED, 'infrared')):
            drawn = llcm_draw(ds, modality, trial=0)
            rows.append(
                {
                    'draw (trial 0)': f'{name}: one image per (id, camera)',
                    'images': len(drawn),
                    'of': len(ds.test_images(modality)),
                }
            )
    return rows


def protocol_files_missing(
    dataset: str, root: Path, protocol: Mapping[str, Any] | None = None
) -> list[str]:
    """What ``protocol`` (default: the dataset's, what every leaderboard run scores) needs besides
    the images and cannot find, e.g. SYSU-MM01's ``exp/rand_perm_cam.mat`` or an image a RegDB
    ``idx/`` file names: one message each."""
    from harness.leaderboard.preflight.data import DATASET_CHECKS
    from protocols.evaluation import check_protocol

    if dataset not in DATASET_CHECKS:
        return []
    report = DATASET_CHECKS[dataset](Path(root), [check_protocol(dataset, protocol)])
    return [f.message for f, _ in report.findings if f.area == 'files' and f.is_error]


def run_check(args: argparse.Namespace) -> int:
    ds = load_dataset(args.dataset, args.root)
    tables = ds.statistics()
    for title, rows in tables.items():
        _print_table(title, rows)
    if args.dataset == 'sysu':
        _print_table('galleries', _sysu_galleries(ds))
        if ds.stray_files:
            print(
                f'\nwarning: {len(ds.stray_files)} non-image file(s) inside id folders, '
                f'e.g. {ds.stray_files[0]}; '
                f'they change the seeded (AGW) gallery draw'
            )
    if args.dataset == 'llcm':
        _print_table('draws', _llcm_draws(ds))
        if ds.stray_files:
            print(
                f'\nwarning: {len(ds.stray_files)} non-image file(s) inside test folders, '
                f"e.g. {ds.stray_files[0]}; they change the seeded draws (as in DEEN's code)"
            )
        if ds.unread:
            print(
                f'\nnote: {len(ds.unread)} folder(s) the protocol never reads (not a camera of '
                f'the official lists or not a test id), e.g. {ds.unread[0]}'
            )
    problems = verify_images(ds.root, ds.records, quick=args.quick, workers=args.workers)
    try:
        raise_for_problems(problems, ds.root)
        faults = []
    except DatasetLayoutError as err:
        faults = [str(err)]
    faults += protocol_files_missing(args.dataset, ds.root)
    if faults:
        raise DatasetLayoutError('\n'.join(faults))
    print(
        f'\nOK: {len(ds.records)} images {"(headers)" if args.quick else "decoded"}; '
        f'fingerprint {ds.fingerprint()}'
    )
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from protocols.fetch import fetch

    path, names = fetch(args.source, args.out, md5=args.md5)
    tops = sorted({n.replace('\\', '/').split('/')[0] for n in names})
    print(
        f'downloaded {path}; extracted {len(names)} entries into {args.out}: {", ".join(tops[:10])}'
    )
    return 0


def run_synth(args: argparse.Namespace) -> int:
    import time

    from harness.outputs import check_output
    from protocols.datasets.synthetic import MARKER, generate
    from protocols.datasets.synthetic.directory import enclosing_dataset
    from protocols.datasets.synthetic.parallel import default_workers

    around = enclosing_dataset(args.out)
    if around is not None:
        check_output('--out', args.out, data={f'{around[0]} dataset': around[1]}, writes=())

    if args.size == 'full' and args.ids is not None:
        raise ValueError(
            "--ids applies to --size demo; --size full has the release's identities "
            '(pass --scale F for a fraction of them)'
        )
    if args.size == 'demo' and args.scale != 1:
        raise ValueError('--scale applies to --size full; --size demo takes --ids instead')
    if args.workers is not None and args.workers < 1:
        raise ValueError(f'--workers must be at least 1, got {args.workers}')
    workers = args.workers or default_workers()
    kwargs = {} if args.ids is None else {'ids': args.ids}
    if args.low_light is not None:
        if args.dataset != 'llcm':
            raise ValueError(f'--low-light is a knob of the synthetic LLCM, not of {args.dataset}')
        kwargs['low_light'] = args.low_light
    if args.size == 'full':
        kwargs.update(size='full', scale=args.scale)
    start, wall = time.time(), time.perf_counter()
    out = generate(args.dataset, args.out, seed=args.seed, gap=args.gap, workers=workers, **kwargs)
    seconds = time.perf_counter() - wall
    if (out / MARKER).stat().st_mtime < start:
        print(f'{out} already holds this synthetic {args.dataset} dataset; nothing written')
    else:
        files = [p for p in out.rglob('*') if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        print(
            f'wrote synthetic {args.dataset} ({args.size}) to {out}: {len(files)} files, '
            f'{size / 1e6:.1f} MB, in {seconds:.1f} s with {workers} worker process(es)'
        )
    print(f'check it with: vireid data check --dataset {args.dataset} --root {out}')
    return 0
