"""``vireid test CONFIG CHECKPOINT``: score a checkpoint on the config's protocol."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.cli.train import add_common, data_root
from harness.plugins import discover, resolve_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser('test', help='score a checkpoint (trained or converted) on the protocol')
    p.add_argument('config', help="config file, or an installed plugin's config name (agw_sysu)")
    p.add_argument('checkpoint')
    p.add_argument('--work-dir', help='where logs go (default: beside the checkpoint)')
    p.add_argument('--json', help='write the results here')
    p.add_argument(
        '--trusted',
        action='store_true',
        help='the checkpoint holds pickled Python objects besides tensors and you '
        'trust its source: load it with weights_only=False (never the default)',
    )
    add_common(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.engine.report import format_results
    from harness.engine.run import score_checkpoint
    from harness.outputs import check_output, require_utf8

    discover()
    args.config = str(resolve_config(args.config))
    work_dir = args.work_dir or str(Path(args.checkpoint).resolve().parent / 'test')
    data = {'dataset root': data_root(args)}
    require_utf8('--work-dir', work_dir)
    check_output('--work-dir', work_dir, data=data, writes=())
    if args.json:
        inputs = {'config': args.config, 'checkpoint': args.checkpoint}
        check_output('--json', args.json, inputs, data=data)
    out = score_checkpoint(
        args.config,
        args.checkpoint,
        work_dir,
        data_root=args.data_root,
        cfg_options=args.cfg_options,
        launcher=args.launcher,
        trusted=args.trusted,
    )
    print(format_results(out['results']))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                dict(
                    config=args.config,
                    checkpoint=args.checkpoint,
                    protocol=out['protocol'],
                    results=out['results'],
                ),
                indent=2,
            )
        )
    return 0
