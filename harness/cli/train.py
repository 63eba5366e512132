"""``vireid train CONFIG``: train on the config's protocol, then score every setting."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.options import add_cfg_options
from harness.engine.progress import PROGRESS_NAME
from harness.plugins import discover, resolve_config
from harness.records import RECORD_NAME


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument('--data-root', help='dataset root (overrides the config data_root)')
    add_cfg_options(
        p,
        'override config keys, e.g. train_cfg.max_epochs=2 log.interval=10 (an '
        'unknown key is refused; protocol fields need --allow-protocol-change)',
    )
    p.add_argument(
        '--launcher',
        default='none',
        choices=['none', 'pytorch', 'slurm'],
        help='"pytorch" under torchrun for multi-GPU training',
    )
    p.add_argument('--debug', action='store_true', help='show tracebacks')


def default_work_dir(config: str) -> str:
    return str(Path('work_dirs') / Path(config).stem)


# What a run writes into its work dir (mmengine adds its timestamped log folders).
RUN_FILES = ('config.py', RECORD_NAME, PROGRESS_NAME, 'features.npz', 'last_checkpoint', '*.pth')


def data_root(args: argparse.Namespace) -> str | None:
    """The dataset root a run of ``args.config`` reads: ``--data-root``, else the config's."""
    from harness.engine.config import load_config

    return args.data_root or load_config(args.config, args.cfg_options).get('data_root')


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser('train', help='train a method config and score it on its protocol')
    p.add_argument('config', help="config file, or an installed plugin's config name (agw_sysu)")
    p.add_argument('--work-dir', help='run directory (default work_dirs/<config name>)')
    p.add_argument(
        '--resume',
        action='store_true',
        help='continue from WORK_DIR/last_checkpoint (a finished run is only re-tested)',
    )
    p.add_argument(
        '--allow-protocol-change',
        action='store_true',
        help='run a config that changes protocol fields; its record is marked non-comparable',
    )
    add_common(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.engine.report import print_record_summary
    from harness.engine.run import run_experiment
    from harness.outputs import check_output, require_utf8

    discover()
    args.config = str(resolve_config(args.config))
    work_dir = args.work_dir or default_work_dir(args.config)
    require_utf8('--work-dir', work_dir)
    check_output(
        '--work-dir',
        work_dir,
        {'config': args.config},
        data={'dataset root': data_root(args)},
        writes=RUN_FILES,
        fix=f'copy the config out first (cp {args.config} my_config.py) and train the copy, or '
        'choose another --work-dir',
    )
    record = run_experiment(
        args.config,
        work_dir,
        data_root=args.data_root,
        cfg_options=args.cfg_options,
        resume=args.resume,
        allow_protocol_change=args.allow_protocol_change,
        launcher=args.launcher,
    )
    print_record_summary(record)
    return 0
