"""``vireid leaderboard``: every method x every protocol, resumable, locally or on Slurm.

SYSU-MM01 trains once per config and scores all four settings over the 10 gallery trials; RegDB
trains once per split (``--regdb-splits``, default 1-10) and scores both directions; LLCM trains
once per config and scores both directions over its 10 draws. Runs live in
``OUT/runs/<method>/<config stem>/<dataset>[-split<k>]``; start the same command again to resume.
"""

from __future__ import annotations

import argparse
import functools
import json
import shlex
import sys
from pathlib import Path

from harness.cli.options import add_cfg_options, non_negative_int, positive_int
from harness.leaderboard.launch import local_jobs, make_launcher, resolve_gpus, submitted_jobs
from harness.leaderboard.options import (
    LeaderboardOptions,
    base_argv,
    changed_message,
    changed_runs,
    check_run_options,
    plan_from_options,
)
from harness.leaderboard.plan import DEMO_REGDB_SPLITS, run_state
from harness.leaderboard.worker import DEFAULT_RUNNER
from protocols.datasets import DATASETS

EPILOG = """examples:
  vireid leaderboard --demo --out /tmp/lb   # every demo config on synthetic data (~10 min, 2 CPUs)
  vireid leaderboard --data-root-sysu data/SYSU-MM01 --data-root-regdb data/RegDB --jobs 2
  vireid leaderboard --datasets llcm --data-root-llcm data/LLCM --dry-run
  vireid leaderboard --launcher slurm --partition gpu --gpus-per-run 1 --time-min 720
  vireid leaderboard --launcher slurm --cpus-per-run 8 --sbatch-args="--account=myproj --qos=normal"
  vireid leaderboard --methods agw --datasets regdb --regdb-splits 1-3 --dry-run
  vireid leaderboard --methods agw --datasets sysu --official --trusted   # + the authors' weights
  vireid leaderboard --methods agw --datasets sysu --official --official-only --trusted  # only them
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        'leaderboard',
        help='train and score every method on every protocol (resumable)',
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sel = p.add_argument_group('what to run')
    sel.add_argument(
        '--methods', help='comma-separated method names (default: every installed method)'
    )
    sel.add_argument(
        '--configs', help='comma-separated config file stems, e.g. agw_sysu (default: all)'
    )
    sel.add_argument(
        '--datasets',
        default=','.join(DATASETS),
        help=f'comma-separated: {", ".join(DATASETS)} (default all)',
    )
    sel.add_argument(
        '--kinds', help="comma-separated entry kinds (default 'full,ablation'; 'demo' with --demo)"
    )
    sel.add_argument(
        '--regdb-splits',
        help=f'RegDB splits to train, e.g. 1-10 or 1,2 (default 1-10; '
        f'{",".join(map(str, DEMO_REGDB_SPLITS))} with --demo)',
    )
    sel.add_argument(
        '--demo',
        action='store_true',
        help='demo configs on synthetic datasets generated once into OUT/data/',
    )
    sel.add_argument(
        '--untrained',
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also score each run's network untrained (its initial weights): rows "
        "with source 'untrained', the floor training must beat (default: on with "
        '--demo, else off)',
    )
    sel.add_argument(
        '--official',
        action='store_true',
        help="also re-score the authors' released checkpoints (declared by each "
        'method; fetched with gdown where they are on Google Drive) under this '
        "protocol: rows with source 'official'; needs --trusted",
    )
    sel.add_argument(
        '--official-checkpoint',
        action='append',
        metavar='METHOD:DATASET=PATH',
        help='a released checkpoint already on disk, scored for every planned run of '
        'METHOD on DATASET (sysu, llcm or regdb-split<k>), in place of a declared release; '
        'repeatable, one file per METHOD:DATASET; needs --trusted',
    )
    sel.add_argument(
        '--official-only',
        action='store_true',
        help='plan only the official runs of --official/--official-checkpoint: re-score the '
        "authors' weights without training anything (no trained run is needed; the untrained "
        'twins only with --untrained)',
    )
    sel.add_argument(
        '--trusted',
        action='store_true',
        help="read official checkpoints with weights_only=False: the authors' files "
        'pickle numpy objects, and unpickling runs code (only for sources you trust)',
    )
    sel.add_argument(
        '--rerun',
        action='store_true',
        help='run again every planned run that is done: training runs train from scratch, '
        'official and untrained runs are scored again (the old record kept as '
        'record.prev.json); with --official-only only the official runs are planned, so only '
        'they are re-scored and trained runs are left as they are',
    )
    add_cfg_options(sel, 'override config keys in every run, e.g. train_cfg.max_epochs=2')
    io = p.add_argument_group('where')
    io.add_argument(
        '--out',
        default='work_dirs/leaderboard',
        help='runs, records and tables (default %(default)s)',
    )
    io.add_argument(
        '--data-root-sysu', help='SYSU-MM01 root (default: the protocol config data_root)'
    )
    io.add_argument('--data-root-regdb', help='RegDB root (default: the protocol config data_root)')
    io.add_argument('--data-root-llcm', help='LLCM root (default: the protocol config data_root)')
    io.add_argument('--no-plots', action='store_true', help='skip the plots in OUT/tables')
    io.add_argument(
        '--figures',
        action='store_true',
        help='draw `vireid figures` for every finished run (RUN_DIR/figures; '
        'with --rerun, redrawn)',
    )
    io.add_argument(
        '--reported',
        help='reported results CSV (default: the one shipped with '
        'vireid-bench, results/reported.csv; "" for none)',
    )
    how = p.add_argument_group('how')
    how.add_argument(
        '--launcher',
        choices=['local', 'slurm', 'inline'],
        default='local',
        help='local: one subprocess per run, --jobs at a time; slurm: one submitit job per run; '
        'inline: in this process (debugging)',
    )
    how.add_argument(
        '--jobs',
        type=positive_int,
        default=None,
        help='local runs at a time (default 1; with --demo one per CPU core, each run '
        'single-threaded: small demo models use one core each better than two)',
    )
    how.add_argument('--partition', help='Slurm partition')
    how.add_argument(
        '--gpus-per-run',
        type=non_negative_int,
        default=None,
        help='GPUs per run; above 1 the run goes through torchrun, one process '
        'per GPU, and keeps the single-GPU recipe (default 1; with --launcher '
        'slurm 0 when the partition has no GPUs)',
    )
    how.add_argument(
        '--cpus-per-run', type=positive_int, help='Slurm CPUs per run (sbatch --cpus-per-task)'
    )
    how.add_argument(
        '--time-min', type=positive_int, default=2880, help='Slurm time limit per run, minutes'
    )
    how.add_argument(
        '--sbatch-args',
        metavar='"--NAME=VALUE ..."',
        help='more sbatch options for every job, e.g. --sbatch-args="--account=proj --qos=high"',
    )
    how.add_argument(
        '--dry-run',
        action='store_true',
        help="print the plan and each run's state, marking the runs the cheap checks (configs, "
        'protocol, data, disk) would stop; run nothing (exit 2 when any would fail)',
    )
    how.add_argument(
        '--preflight',
        action='store_true',
        help='check everything the runs need (data, protocol files, ImageNet weights, disk, '
        'Slurm partition) and measure one training step of each config on this device: '
        'projected time per run and in total; run nothing (exit 2 on any problem)',
    )
    how.add_argument(
        '--seconds-per-iter',
        metavar='S',
        help='training seconds per iteration for the cost plan: one number, or '
        'STEM=S,... per config (default: measured by `vireid bench train`)',
    )
    how.add_argument(
        '--runner', default=DEFAULT_RUNNER, help=argparse.SUPPRESS
    )  # tests swap the engine
    how.add_argument(
        '--cluster', default='slurm', help=argparse.SUPPRESS
    )  # submitit: slurm|local|debug
    p.add_argument('--debug', action='store_true', help='show tracebacks')
    p.set_defaults(func=run)


@functools.cache
def _config_root(config: str) -> str:
    """The data root a run of ``config`` reads when no --data-root-* is given (protocols/configs:
    data/SYSU-MM01, data/RegDB, data/LLCM, relative to the working directory)."""
    from harness.engine.config import load_config

    try:
        return str(load_config(config).get('data_root'))
    except Exception:  # the cheap checks name a config that does not load
        return '(unreadable config)'


def print_plan(
    runs, options: LeaderboardOptions, stopped: dict[str, list[str]] | None = None
) -> None:
    """The plan; ``stopped`` marks the runs a check would stop (run key -> areas)."""
    from harness.leaderboard.launchers import worker_command
    from harness.leaderboard.slurm import QUEUED, describe, is_active

    jobs = submitted_jobs(Path(options.out), runs)
    print(
        f'{len(runs)} runs under {options.out}/runs (launcher {options.launcher}'
        + (f', {local_jobs(options)} at a time' if options.launcher == 'local' else '')
        + '):'
    )
    from harness.engine.progress import format_progress, read_progress

    for r in runs:
        state, job = run_state(r), ''
        if r.key in jobs:
            job_id, job_state = jobs[r.key]
            if is_active(job_state) and state != 'done':
                state = 'queued' if job_state in QUEUED else 'running'
            job = f' job {job_id}: {describe(job_state)}'
        prog = read_progress(r.work_dir) if state in ('busy', 'partial', 'running') else None
        # A Slurm job on another node is followed the same way: its progress file is in its run dir.
        where = f' [{format_progress(prog)}]' if prog else ''
        root = r.data_root or f'{_config_root(r.config)} (config default)'
        fails = f' WOULD FAIL ({", ".join(stopped[r.key])})' if r.key in (stopped or {}) else ''
        print(f'  {state:8s} {r.key:50s} kind={r.kind} data_root={root}{where}{job}{fails}')
    if runs and options.launcher != 'inline':
        cmd = worker_command(runs[0], options.runner, options.rerun, options.gpus_per_run or 0)
        spec = json.dumps(runs[0].to_dict(), sort_keys=True)
        shown = ['<run json>' if tok == spec else tok for tok in cmd]
        print(
            'each run is one process'
            + (' (a Slurm job)' if options.launcher == 'slurm' else '')
            + ':\n  '
            + shlex.join(shown)
        )
    from harness.leaderboard.cost import cost_plan, format_cost_plan

    costs = cost_plan(runs, getattr(options, 'seconds_per_iter', None))
    print(format_cost_plan(costs, options.gpus_per_run))


def run(args: argparse.Namespace, methods: dict | None = None) -> int:
    from harness.leaderboard.session import prepare_demo_data, run_leaderboard
    from harness.outputs import check_output, require_utf8
    from harness.tables.build import load_reported
    from harness.tables.export import default_reported, missing_reported_warning

    options = LeaderboardOptions.from_namespace(args)
    out = Path(options.out)
    given = {f'{ds} dataset root': getattr(options, f'data_root_{ds}') for ds in DATASETS}
    require_utf8('--out', out, 'its runs write their own paths into text files')
    check_output('--out', out, data=given, writes=())
    runs, roots = plan_from_options(options, methods)
    if not runs:
        raise ValueError(
            'nothing to run: no installed method has a config matching --methods/--configs/'
            '--datasets/--kinds (see `vireid methods`)'
        )
    # (another engine reads its own way)
    if options.cfg_options and options.runner == DEFAULT_RUNNER:
        check_run_options(runs)
    # Resolved once (a Slurm partition without GPUs gets 0) for the plan, the jobs and retries.
    options.gpus_per_run = resolve_gpus(options)
    reported = (options.reported or None) if options.reported is not None else default_reported()
    load_reported(reported)  # a bad reported.csv line stops the session now, not after its runs
    # Done means done with this config: a run dir holding another config's run is refused.
    changed = [] if options.rerun else changed_runs(runs)
    if changed and not options.dry_run:
        from harness.errors import ConfigError

        raise ConfigError(changed_message(changed, options))
    from harness.leaderboard import preflight

    # The runs this command would start; another engine (tests) reads its data its own way.
    todo = [r for r in runs if options.rerun or run_state(r) not in ('done', 'busy')]
    checks = options.runner == DEFAULT_RUNNER
    demo_data = out / 'data'
    wanted = sorted(
        {r.dataset for r in runs if r.data_root and Path(r.data_root).parent == demo_data}
    )
    if options.dry_run and not options.preflight:
        pending = [demo_data / ds for ds in wanted if not (demo_data / ds).is_dir()]
        checked = preflight.cheap_checks(todo, pending_roots=pending) if checks else None
        stopped = preflight.failing_runs(checked.findings, [r.key for r in todo]) if checked else {}
        print_plan(runs, options, stopped)
        if changed:
            print(changed_message(changed, options).replace('Nothing was run. ', ''))
        if checked is not None:
            print(preflight.format_findings(checked.findings, 'checks'))
        return 2 if stopped else 0
    if options.demo and wanted:
        print(
            f'[leaderboard] synthetic data for {", ".join(wanted)} in {out / "data"} ...',
            file=sys.stderr,
            flush=True,
        )
        prepare_demo_data(out, wanted)
    if options.preflight:
        report = preflight.run_preflight(
            todo,
            launcher=options.launcher if options.cluster == 'slurm' else 'local',
            partition=options.partition,
            gpus_per_run=options.gpus_per_run,
            cpus_per_run=options.cpus_per_run,
            time_min=options.time_min,
            jobs=local_jobs(options),
        )
        print(preflight.format_report(report))
        return report.exit_code
    if checks and todo:
        checked = preflight.cheap_checks(todo)
        shown = ('error', 'warning')
        if checked.errors or any(f.level == 'warning' for f in checked.findings):
            print(preflight.format_findings(checked.findings, 'checks', shown), file=sys.stderr)
        if checked.errors:
            print(
                '[leaderboard] nothing was started; fix the problems above (`--preflight` also '
                'checks the ImageNet weights and measures each config)',
                file=sys.stderr,
            )
            return 2
    if options.reported is None and reported is None:
        print(missing_reported_warning(), file=sys.stderr)
    try:
        summary = run_leaderboard(
            runs,
            make_launcher(options, out),
            out,
            rerun=options.rerun,
            base_argv=base_argv(options),
            reported=reported,
            plots=not options.no_plots,
            figures=options.figures,
        )
    except KeyboardInterrupt:
        # Workers were stopped; finished runs are recorded and interrupted ones resume from their
        # checkpoint.
        print(
            f'\n[leaderboard] interrupted; start the same command again to resume '
            f'(finished runs are kept, interrupted ones continue from their last checkpoint); '
            f'records under {out}/runs',
            file=sys.stderr,
        )
        return 130
    from harness.leaderboard.session import summary_text

    print(summary_text(summary))
    if summary.get('comparison'):
        print(summary['comparison'])
    if summary.get('problems'):
        print(summary['problems'])
    if summary.get('tables_dir'):
        tables = summary['tables_dir']
        print(f'Tables written to {tables}/ (the page: {tables}/index.html)')
    for failure in summary['figure_failures']:
        print(f'figures of {failure["run_dir"]} failed: {failure["error"]}')
    return 1 if summary['failed'] or summary['figure_failures'] else 0
