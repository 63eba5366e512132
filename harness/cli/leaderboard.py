"""``vireid leaderboard``: every method x every protocol, resumable, locally or on Slurm.

SYSU-MM01 trains once per config and scores all four settings over the 10 gallery trials; RegDB
trains once per split (``--regdb-splits``, default 1-10) and scores both directions. Runs live in
``OUT/runs/<method>/<config stem>/<dataset>[-split<k>]``; start the same command again to resume.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from harness.cli.options import add_cfg_options, positive_int
from harness.leaderboard.plan import (
    DEMO_REGDB_SPLITS,
    REGDB_SPLITS,
    build_plan,
    parse_splits,
    run_state,
)
from harness.leaderboard.worker import DEFAULT_RUNNER

EPILOG = """examples:
  vireid leaderboard --demo --out /tmp/lb   # every demo config on synthetic data (~10 min, 2 CPUs)
  vireid leaderboard --data-root-sysu data/SYSU-MM01 --data-root-regdb data/RegDB --jobs 2
  vireid leaderboard --launcher slurm --partition gpu --gpus-per-run 1 --time-min 720
  vireid leaderboard --launcher slurm --cpus-per-run 8 --sbatch-args="--account=myproj --qos=normal"
  vireid leaderboard --methods agw --datasets regdb --regdb-splits 1-3 --dry-run
  vireid leaderboard --methods agw --datasets sysu --official --trusted   # + the authors' weights
"""


def _csv(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(',') if t.strip()] if text else None


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
        '--datasets', default='sysu,regdb', help='comma-separated: sysu, regdb (default both)'
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
        help='demo configs on synthetic SYSU-MM01 and RegDB generated once into OUT/data/',
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
        'METHOD on DATASET (sysu or regdb-split<k>); repeatable; needs --trusted',
    )
    sel.add_argument(
        '--trusted',
        action='store_true',
        help="read official checkpoints with weights_only=False: the authors' files "
        'pickle numpy objects, and unpickling runs code (only for sources you trust)',
    )
    sel.add_argument('--rerun', action='store_true', help='train again even runs that are done')
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
    io.add_argument('--no-plots', action='store_true', help='skip the CMC plots in OUT/tables')
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
        type=int,
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


def _fmt_option(value) -> str:
    if isinstance(value, (list, tuple)):
        inner = ','.join(_fmt_option(v) for v in value)
        return f'[{inner}]' if isinstance(value, list) else f'({inner})'
    return str(value)


def base_argv(args: argparse.Namespace) -> list[str]:
    """The options that a retry command must repeat (the run selection is added per retry)."""
    argv = ['--out', args.out]
    if args.demo:
        argv.append('--demo')
    if args.untrained is not None:
        argv.append('--untrained' if args.untrained else '--no-untrained')
    if getattr(args, 'official', False):
        argv.append('--official')
    for given in getattr(args, 'official_checkpoint', None) or ():
        argv += ['--official-checkpoint', given]
    if getattr(args, 'trusted', False):
        argv.append('--trusted')
    for flag, value in (
        ('--data-root-sysu', args.data_root_sysu),
        ('--data-root-regdb', args.data_root_regdb),
        ('--reported', args.reported),
    ):
        if value is not None:
            argv += [flag, value]
    if args.launcher != 'local':
        argv += ['--launcher', args.launcher]
    if args.jobs not in (None, 1):
        argv += ['--jobs', str(args.jobs)]
    if args.launcher == 'slurm':
        if args.partition:
            argv += ['--partition', args.partition]
        argv += ['--time-min', str(args.time_min)]
        if args.cpus_per_run:
            argv += ['--cpus-per-run', str(args.cpus_per_run)]
        if args.sbatch_args:
            argv.append(f'--sbatch-args={args.sbatch_args}')
    if args.gpus_per_run not in (None, 1):
        argv += ['--gpus-per-run', str(args.gpus_per_run)]
    if args.cfg_options:
        argv += ['--cfg-options', *[f'{k}={_fmt_option(v)}' for k, v in args.cfg_options.items()]]
    return argv


def local_jobs(args: argparse.Namespace) -> int:
    return args.jobs or (len(os.sched_getaffinity(0)) if args.demo else 1)


def make_launcher(args: argparse.Namespace, out: Path):
    from harness.leaderboard.launchers import (
        InlineLauncher,
        LocalLauncher,
        SubmititLauncher,
        parse_sbatch_args,
    )

    gpus = resolve_gpus(args) if args.gpus_per_run is None else args.gpus_per_run
    if args.launcher == 'inline':
        return InlineLauncher(runner=args.runner, rerun=args.rerun)
    if args.launcher == 'local':
        return LocalLauncher(
            jobs=local_jobs(args), runner=args.runner, rerun=args.rerun, gpus_per_run=gpus
        )
    return SubmititLauncher(
        out / 'submitit',
        out / 'jobs.json',
        cluster=args.cluster,
        partition=args.partition,
        gpus_per_run=gpus,
        time_min=args.time_min,
        cpus_per_run=args.cpus_per_run,
        runner=args.runner,
        rerun=args.rerun,
        sbatch_args=parse_sbatch_args(args.sbatch_args),
    )


def resolve_gpus(args: argparse.Namespace, stream=None) -> int:
    """GPUs per run: the option, else 1; on a Slurm partition without GPUs, 0 (said once on
    ``stream``), and an explicit request for GPUs there is refused before anything is submitted."""
    gpus = 1 if args.gpus_per_run is None else args.gpus_per_run
    if gpus < 0:
        raise ValueError(f'--gpus-per-run must be 0 or more, got {gpus}')
    if args.launcher == 'slurm' and args.cluster == 'slurm':
        from harness.leaderboard.slurm import default_partition, partition_gres, partition_has_gpus

        where = (
            f'partition {args.partition!r}'
            if args.partition
            else f'the default partition ({default_partition() or "unknown"})'
        )
        has_gpus = partition_has_gpus(args.partition)
        if has_gpus is False and args.gpus_per_run is None:
            gpus = 0
            print(
                f'[leaderboard] {where} offers no GPUs (sinfo lists no gpu gres): each run is '
                f'one CPU job (--gpus-per-run 0); name a GPU partition with --partition to train '
                f'on GPUs',
                file=stream or sys.stderr,
                flush=True,
            )
        elif has_gpus is False and gpus > 0:
            gres = ', '.join(partition_gres(args.partition) or []) or 'none'
            raise ValueError(
                f'--gpus-per-run {gpus}: {where} offers no GPUs (sinfo gres: '
                f'{gres}), so sbatch would refuse every '
                f'job ("Invalid generic resource (gres) specification"). Pass '
                f'--gpus-per-run 0 to train on its CPUs, or --partition NAME of a '
                f'partition with GPUs (sinfo -o "%P %G" lists them).'
            )
    return gpus


def plan_from_args(args: argparse.Namespace, methods: dict | None = None):
    """(runs, data roots) for the parsed command line; ``methods`` defaults to the installed
    plugins."""
    if methods is None:
        from harness.plugins import discover

        methods = discover()
    out = Path(args.out)
    kinds = _csv(args.kinds) or (['demo'] if args.demo else ['full', 'ablation'])
    splits = parse_splits(args.regdb_splits, DEMO_REGDB_SPLITS if args.demo else REGDB_SPLITS)
    datasets = _csv(args.datasets) or ['sysu', 'regdb']
    roots = {'sysu': args.data_root_sysu, 'regdb': args.data_root_regdb}
    if args.demo:
        for ds in datasets:
            roots[ds] = roots.get(ds) or str(out / 'data' / ds)
    runs = build_plan(
        methods,
        out,
        names=_csv(args.methods),
        datasets=datasets,
        kinds=kinds,
        configs=_csv(args.configs),
        regdb_splits=splits,
        data_roots=roots,
        cfg_options=args.cfg_options,
        untrained=args.demo if args.untrained is None else args.untrained,
    )
    # The authors' weights right after the training runs: a fetch that fails holds up nothing.
    first_scored = next((i for i, r in enumerate(runs) if not r.trains), len(runs))
    runs[first_scored:first_scored] = official_plan(args, runs, methods, out)
    return runs, roots


def official_plan(args: argparse.Namespace, runs, methods: dict, out: Path) -> list:
    """The scored-only runs of the authors' checkpoints (``--official``,
    ``--official-checkpoint``), with a note on stderr for what cannot be re-scored."""
    declared, given = getattr(args, 'official', False), getattr(args, 'official_checkpoint', None)
    if not (declared or given):
        return []
    from harness.official import official_runs, parse_given, released_of, unreleased_note

    twins = official_runs(
        runs,
        methods,
        out,
        declared,
        [parse_given(g) for g in given or ()],
        trusted=getattr(args, 'trusted', False),
    )
    if declared:
        planned = sorted({r.method for r in runs})
        notes = unreleased_note(methods, planned)
        if not twins:
            fits = sorted(f'{rel.config} ({m})' for m in planned for rel in released_of(methods[m]))
            notes.append(
                'no released checkpoint fits the planned configs'
                + (f'; the released ones fit {", ".join(fits)}' if fits else '')
            )
        for note in notes:
            print(f'[leaderboard] --official: {note}', file=sys.stderr)
    return twins


def check_run_options(runs) -> None:
    """Refuse a bad --cfg-options (unknown key, wrong value, protocol field) before any run starts:
    every run of a config would fail the same way."""
    from harness.engine.config import check_protocol_unchanged, load_config

    checked = set()
    for r in runs:
        if r.config not in checked:
            checked.add(r.config)
            check_protocol_unchanged(load_config(r.config, r.run_options()))


def submitted_jobs(out: Path, runs) -> dict[str, tuple[str, str]]:
    """``{run key: (job id, scheduler state)}`` for the Slurm jobs earlier leaderboards submitted
    into ``out`` and did not see end (one ``sacct``/``squeue`` call for all of them)."""
    try:
        known = json.loads((out / 'jobs.json').read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    keys = {r.key for r in runs}
    open_jobs = {
        k: str(e['job_id'])
        for k, e in known.items()
        if k in keys and e.get('cluster') == 'slurm' and e.get('state') == 'SUBMITTED'
    }
    if not open_jobs:
        return {}
    from harness.leaderboard.slurm import job_states

    states = job_states(open_jobs.values())
    return {k: (j, states.get(j, 'UNKNOWN')) for k, j in open_jobs.items()}


def print_plan(runs, args: argparse.Namespace, stopped: dict[str, list[str]] | None = None) -> None:
    """The plan; ``stopped`` marks the runs a check would stop (run key -> areas)."""
    from harness.leaderboard.launchers import worker_command
    from harness.leaderboard.slurm import QUEUED, describe, is_active

    jobs = submitted_jobs(Path(args.out), runs)
    print(
        f'{len(runs)} runs under {args.out}/runs (launcher {args.launcher}'
        + (f', {local_jobs(args)} at a time' if args.launcher == 'local' else '')
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
        root = r.data_root or '(config)'
        fails = f' WOULD FAIL ({", ".join(stopped[r.key])})' if r.key in (stopped or {}) else ''
        print(f'  {state:8s} {r.key:50s} kind={r.kind} data_root={root}{where}{job}{fails}')
    if runs and args.launcher != 'inline':
        cmd = worker_command(runs[0], args.runner, args.rerun, args.gpus_per_run or 0)
        spec = json.dumps(runs[0].to_dict(), sort_keys=True)
        shown = ['<run json>' if tok == spec else tok for tok in cmd]
        print(
            'each run is one process'
            + (' (a Slurm job)' if args.launcher == 'slurm' else '')
            + ':\n  '
            + shlex.join(shown)
        )
    from harness.leaderboard.cost import cost_plan, format_cost_plan

    costs = cost_plan(runs, getattr(args, 'seconds_per_iter', None))
    print(format_cost_plan(costs, args.gpus_per_run))


def run(args: argparse.Namespace, methods: dict | None = None) -> int:
    from harness.leaderboard.session import prepare_demo_data, run_leaderboard
    from harness.tables.export import default_reported, missing_reported_warning

    out = Path(args.out)
    runs, roots = plan_from_args(args, methods)
    if not runs:
        raise ValueError(
            'nothing to run: no installed method has a config matching --methods/--configs/'
            '--datasets/--kinds (see `vireid methods`)'
        )
    if args.cfg_options and args.runner == DEFAULT_RUNNER:  # (another engine reads its own way)
        check_run_options(runs)
    # Resolved once (a Slurm partition without GPUs gets 0) for the plan, the jobs and retries.
    args.gpus_per_run = resolve_gpus(args)
    from harness.leaderboard import preflight

    # The runs this command would start; another engine (tests) reads its data its own way.
    todo = [r for r in runs if args.rerun or run_state(r) not in ('done', 'busy')]
    checks = args.runner == DEFAULT_RUNNER
    demo_data = out / 'data'
    wanted = sorted(
        {r.dataset for r in runs if r.data_root and Path(r.data_root).parent == demo_data}
    )
    if args.dry_run and not args.preflight:
        pending = [demo_data / ds for ds in wanted if not (demo_data / ds).is_dir()]
        checked = preflight.cheap_checks(todo, pending_roots=pending) if checks else None
        stopped = preflight.failing_runs(checked.findings, [r.key for r in todo]) if checked else {}
        print_plan(runs, args, stopped)
        if checked is not None:
            print(preflight.format_findings(checked.findings, 'checks'))
        return 2 if stopped else 0
    if args.demo and wanted:
        print(
            f'[leaderboard] synthetic data for {", ".join(wanted)} in {out / "data"} ...',
            file=sys.stderr,
            flush=True,
        )
        prepare_demo_data(out, wanted)
    if args.preflight:
        report = preflight.run_preflight(
            todo,
            launcher=args.launcher if args.cluster == 'slurm' else 'local',
            partition=args.partition,
            gpus_per_run=args.gpus_per_run,
            cpus_per_run=args.cpus_per_run,
            time_min=args.time_min,
            jobs=local_jobs(args),
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
    reported = (args.reported or None) if args.reported is not None else default_reported()
    if args.reported is None and reported is None:
        print(missing_reported_warning(), file=sys.stderr)
    try:
        summary = run_leaderboard(
            runs,
            make_launcher(args, out),
            out,
            rerun=args.rerun,
            base_argv=base_argv(args),
            reported=reported,
            plots=not args.no_plots,
            figures=args.figures,
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
