"""``vireid train CONFIG``: train on the config's protocol, then score every setting."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.cli.options import add_cfg_options
from harness.engine.progress import PROGRESS_NAME
from harness.errors import UsageError
from harness.locks import hold_run_dir
from harness.plugins import discover, resolve_config
from harness.records import RECORD_NAME, read_record, run_outputs, set_aside


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
        '--rerun',
        action='store_true',
        help='train again in a WORK_DIR that holds a run: the earlier run is moved to '
        'WORK_DIR/superseded/<time>-<config hash>/ first (nothing is overwritten)',
    )
    p.add_argument(
        '--allow-protocol-change',
        action='store_true',
        help='run a config that changes protocol fields; its record is marked non-comparable',
    )
    add_common(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.engine.config import load_config
    from harness.engine.report import print_record_summary
    from harness.engine.run import run_experiment
    from harness.outputs import check_output, require_utf8

    discover()
    args.config = str(resolve_config(args.config))
    work_dir = args.work_dir or default_work_dir(args.config)
    require_utf8('--work-dir', work_dir)
    # Loaded once here for the checks below (a config typo is refused before anything is written).
    cfg = load_config(args.config, args.cfg_options)
    root = args.data_root or cfg.get('data_root')
    check_output(
        '--work-dir',
        work_dir,
        {'config': args.config},
        data={'dataset root': root},
        writes=RUN_FILES,
        fix=f'copy the config out first (cp {args.config} my_config.py) and train the copy, or '
        'choose another --work-dir',
    )
    if args.resume and args.rerun:
        raise UsageError(
            '--resume continues the run in --work-dir, --rerun starts it again: give one'
        )
    _check_protocol_files(cfg, root)
    # Under the run directory's lock (re-entrant: the engine takes it again), so that a run
    # another process is writing is reported as busy, and nothing lands between check and start.
    with hold_run_dir(work_dir):
        _keep_earlier_run(Path(work_dir), args)
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


def _keep_earlier_run(work_dir: Path, args: argparse.Namespace) -> None:
    """A run already in ``work_dir`` is continued (``--resume``), moved aside (``--rerun``) or
    kept: training over it would replace its record and checkpoints."""
    if int(os.environ.get('RANK', '0')) != 0:
        return  # under torchrun the lead rank decides, the others follow it
    found = run_outputs(work_dir)
    if not found or args.resume:
        return
    record = read_record(work_dir)  # None when absent or unreadable
    if args.rerun:
        set_aside(work_dir, record, who='train')
        return
    if record is not None:
        what = f'a {record.get("status", "unknown")} run (config hash {record.get("config_hash")})'
    else:
        what = f'a run ({", ".join(p.name for p in found[:3])})'
    raise UsageError(
        f'--work-dir {work_dir} already holds {what}; training would replace it. Continue it with '
        '--resume (a finished run is only re-tested), train again with --rerun (the earlier run is '
        'moved to WORK_DIR/superseded/ first), or choose another --work-dir'
    )


def _check_protocol_files(cfg: Mapping[str, Any], root: str | None) -> None:
    """The files the config's protocol reads only when the trained model is scored (SYSU-MM01's
    ``exp/rand_perm_cam.mat``, the images RegDB's ``idx/`` files name), checked before training:
    a missing one would otherwise fail the run after its last epoch."""
    from harness.cli.data import protocol_files_missing
    from protocols.datasets.base import DatasetLayoutError

    protocol = cfg.get('protocol') or {}
    if not root or not Path(root).is_dir() or 'dataset' not in protocol:
        return  # no dataset to look at: the run's data loading names the problem
    missing = protocol_files_missing(protocol['dataset'], Path(root), dict(protocol))
    if missing:
        raise DatasetLayoutError(
            'nothing was trained: the protocol needs files that are not there\n  '
            + '\n  '.join(missing)
        )
