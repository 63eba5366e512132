"""Training-step throughput of a config under precision/memory-format settings, one run.

Reports images/s for fp32 (the baseline, measured in the same process), AMP and channels_last,
and the ratio of each to the baseline. Needs a CUDA device for AMP (mmengine's AmpOptimWrapper
refuses CPUs); on a CPU only the fp32 rows run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from mmengine.config import DictAction

from harness.engine.config import load_config
from harness.engine.run import build_runner
from harness.outputs import check_output
from harness.plugins import discover, resolve_config

# vireid bench's own options, which reach every benchmark.
COMMON_OPTIONS = '--json OUT (the result as JSON) and --quick apply as well (vireid bench --help).'
SETTINGS = {
    'fp32': dict(amp=dict(enabled=False), channels_last=False),
    'fp32+channels_last': dict(amp=dict(enabled=False), channels_last=True),
    'amp-fp16': dict(amp=dict(enabled=True, dtype='float16'), channels_last=False),
    'amp-bf16': dict(amp=dict(enabled=True, dtype='bfloat16'), channels_last=False),
    'amp-bf16+channels_last': dict(amp=dict(enabled=True, dtype='bfloat16'), channels_last=True),
}


def measure(
    config: str,
    data_root: str,
    setting: str,
    iters: int,
    warmup: int,
    work_dir: Path,
    options: dict | None = None,
) -> dict:
    cfg = load_config(config, {**(options or {}), **SETTINGS[setting]})
    cfg.data_root = data_root
    runner = build_runner(cfg, work_dir / setting.replace('+', '_'), log_level='WARNING')
    runner._train_loop = runner.build_train_loop(
        runner._train_loop
    )  # builds the optimizer wrapper too
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.call_hook('before_run')
    model, optim = runner.model, runner.optim_wrapper
    model.train()
    loader = iter(runner.train_dataloader)
    batches = [next(loader) for _ in range(min(4, len(runner.train_dataloader)))]
    losses = []
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for i in range(warmup + iters):
        if i == warmup:
            sync()
            start = time.perf_counter()
        log_vars = model.train_step(batches[i % len(batches)], optim)
        losses.append(float(torch.as_tensor(log_vars['loss']).detach()))
    sync()
    elapsed = time.perf_counter() - start
    bs = len(batches[0]['inputs'])
    return dict(
        setting=setting,
        images_per_s=round(iters * bs / elapsed, 1),
        batch_size=bs,
        first_loss=round(losses[0], 4),
        last_loss=round(losses[-1], 4),
        finite=bool(all(map(lambda v: v == v and abs(v) != float('inf'), losses))),
        max_memory_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2)
        if torch.cuda.is_available()
        else None,
    )


def own_setting(cfg) -> str:
    """The name in ``SETTINGS`` of the precision / memory format the config itself trains with."""
    amp = cfg.get('amp', {}) or {}
    suffix = '+channels_last' if cfg.get('channels_last', False) else ''
    if not amp.get('enabled'):
        return 'fp32' + suffix
    return ('amp-bf16' if amp.get('dtype') == 'bfloat16' else 'amp-fp16') + suffix


def _record_own_setting(config: str, options: dict, rows: list[dict]) -> None:
    """Keep seconds per iteration of the config's own setting, for the leaderboard cost plan."""
    from harness.leaderboard.cost import record_throughput

    setting = own_setting(load_config(config, options))
    row = next((r for r in rows if r['setting'] == setting), None)
    if row is None:
        print(
            f'[bench train] {Path(config).stem} trains with {setting}, which was not measured '
            'here (AMP needs a CUDA device); no throughput figure kept for the cost plan'
        )
        return
    device = (
        torch.cuda.get_device_name()
        if torch.cuda.is_available()
        else f'cpu ({torch.get_num_threads()} threads)'
    )
    seconds = row['batch_size'] / row['images_per_s']
    path = record_throughput(
        config,
        seconds,
        setting=setting,
        device=device,
        images_per_s=row['images_per_s'],
        batch_size=row['batch_size'],
    )
    print(
        f'[bench train] {Path(config).stem}: {seconds:.3f} s per iteration ({setting}, {device}) '
        f'kept in {path} for `vireid leaderboard --dry-run`'
    )


def _check_outputs(args: argparse.Namespace, a: argparse.Namespace) -> None:
    """Neither the work dir nor ``--json`` may land on the config or inside the dataset."""
    data = {'dataset root': a.data_root}
    check_output('--work-dir', a.work_dir, data=data, writes=())
    if args.json_out:
        check_output('--json', args.json_out, {'config': a.config}, data=data)


def build_parser() -> argparse.ArgumentParser:
    """The options of ``vireid bench train`` (``vireid bench train --help`` prints them)."""
    p = argparse.ArgumentParser(
        prog='vireid bench train', description=__doc__, epilog=COMMON_OPTIONS
    )
    p.add_argument('config', help="config file, or an installed plugin's config name")
    p.add_argument('--data-root', required=True, help='dataset root the batches come from')
    p.add_argument('--iters', type=int, default=20, help='timed iterations per setting (20)')
    p.add_argument('--warmup', type=int, default=5, help='untimed iterations first (5)')
    p.add_argument(
        '--settings',
        default=','.join(SETTINGS),
        help=f'comma-separated settings to measure (default all: {", ".join(SETTINGS)}; the '
        'AMP ones on CUDA only)',
    )
    p.add_argument(
        '--work-dir',
        default='work_dirs/bench_train',
        help='scratch run folder (work_dirs/bench_train)',
    )
    p.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='config overrides, e.g. model.backbone.pretrained=False',
    )
    return p


def main(args: argparse.Namespace) -> int:
    """``vireid bench train CONFIG --data-root DIR [--iters N] [--settings a,b] [--json OUT]``."""
    p = build_parser()
    a = p.parse_args(args.options)
    if a.iters < 1 or a.warmup < 0:
        p.error(f'--iters must be at least 1 and --warmup at least 0, got {a.iters} and {a.warmup}')
    discover()
    a.config = str(resolve_config(a.config))
    _check_outputs(args, a)
    settings = [
        s for s in a.settings.split(',') if torch.cuda.is_available() or not s.startswith('amp')
    ]
    rows = [
        measure(a.config, a.data_root, s, a.iters, a.warmup, Path(a.work_dir), a.cfg_options)
        for s in settings
    ]
    base = rows[0]['images_per_s']
    for r in rows:
        r['ratio_vs_fp32'] = round(r['images_per_s'] / base, 2)
        print(json.dumps(r))
    _record_own_setting(a.config, a.cfg_options, rows)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=2))
    return 0
