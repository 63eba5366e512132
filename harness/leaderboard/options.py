"""The options of one leaderboard command and the plan they select: :class:`LeaderboardOptions`
(``vireid leaderboard``'s flags as plain data), :func:`plan_from_options`, the check of
``--cfg-options`` before any run starts, and the options a retry command repeats."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.leaderboard.official import (
    check_scored_files,
    official_runs,
    replaced_releases,
)
from harness.leaderboard.plan import (
    DEMO_REGDB_SPLITS,
    REGDB_SPLITS,
    build_plan,
    parse_splits,
    scored_twin,
)
from harness.leaderboard.worker import DEFAULT_RUNNER
from harness.official import OfficialError
from protocols.datasets import DATASETS


@dataclass
class LeaderboardOptions:
    """What to run, where and how: one field per ``vireid leaderboard`` flag (its ``dest``), with
    the flag's default; ``from_namespace`` takes them from the parsed command line."""

    # what to run
    methods: str | None = None  # comma-separated method names; None: every installed method
    configs: str | None = None  # comma-separated config stems; None: all
    datasets: str = ','.join(DATASETS)
    kinds: str | None = None  # None: 'full,ablation' ('demo' with demo)
    regdb_splits: str | None = None  # '1-10', '1,2'; None: 1-10 (1 with demo)
    demo: bool = False
    untrained: bool | None = None  # None: on with demo, else off
    official: bool = False
    official_checkpoint: list[str] | None = None  # METHOD:DATASET=PATH, repeatable
    official_only: bool = False  # plan the official runs alone: re-score, train nothing
    trusted: bool = False
    rerun: bool = False
    cfg_options: dict[str, Any] = field(default_factory=dict)
    # where
    out: str = 'work_dirs/leaderboard'
    data_root_sysu: str | None = None
    data_root_regdb: str | None = None
    data_root_llcm: str | None = None
    no_plots: bool = False
    figures: bool = False
    reported: str | None = None  # None: the shipped results/reported.csv; '': none
    # how
    launcher: str = 'local'  # local | slurm | inline
    jobs: int | None = None
    partition: str | None = None
    gpus_per_run: int | None = None
    cpus_per_run: int | None = None
    time_min: int = 2880
    sbatch_args: str | None = None
    dry_run: bool = False
    preflight: bool = False  # check and measure everything the runs need; train nothing
    seconds_per_iter: str | None = None
    runner: str = DEFAULT_RUNNER  # the engine function a worker calls (tests swap it)
    cluster: str = 'slurm'  # submitit's cluster: slurm | local | debug

    @classmethod
    def from_namespace(cls, args: Any) -> LeaderboardOptions:
        """The options a parsed command line holds (attributes named as the fields; others are
        left out)."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)})


def _csv(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(',') if t.strip()] if text else None


def _fmt_option(value) -> str:
    if isinstance(value, (list, tuple)):
        inner = ','.join(_fmt_option(v) for v in value)
        return f'[{inner}]' if isinstance(value, list) else f'({inner})'
    return str(value)


def base_argv(options: LeaderboardOptions) -> list[str]:
    """The options that a retry command must repeat (the run selection is added per retry)."""
    argv = ['--out', options.out]
    if options.demo:
        argv.append('--demo')
    if options.untrained is not None:
        argv.append('--untrained' if options.untrained else '--no-untrained')
    if getattr(options, 'official', False):
        argv.append('--official')
    if getattr(options, 'official_only', False):
        argv.append('--official-only')
    for given in getattr(options, 'official_checkpoint', None) or ():
        argv += ['--official-checkpoint', given]
    if getattr(options, 'trusted', False):
        argv.append('--trusted')
    for flag, value in (
        ('--data-root-sysu', options.data_root_sysu),
        ('--data-root-regdb', options.data_root_regdb),
        ('--data-root-llcm', options.data_root_llcm),
        ('--reported', options.reported),
    ):
        if value is not None:
            argv += [flag, value]
    if options.launcher != 'local':
        argv += ['--launcher', options.launcher]
    if options.jobs not in (None, 1):
        argv += ['--jobs', str(options.jobs)]
    if options.launcher == 'slurm':
        if options.partition:
            argv += ['--partition', options.partition]
        argv += ['--time-min', str(options.time_min)]
        if options.cpus_per_run:
            argv += ['--cpus-per-run', str(options.cpus_per_run)]
        if options.sbatch_args:
            argv.append(f'--sbatch-args={options.sbatch_args}')
    if options.gpus_per_run not in (None, 1):
        argv += ['--gpus-per-run', str(options.gpus_per_run)]
    if options.cfg_options:
        argv += [
            '--cfg-options',
            *[f'{k}={_fmt_option(v)}' for k, v in options.cfg_options.items()],
        ]
    return argv


def plan_from_options(options: LeaderboardOptions, methods: dict | None = None):
    """(runs, data roots) for ``options``; ``methods`` defaults to the installed plugins.

    With ``official_only`` the runs are the official ones alone (re-scoring: nothing trains,
    no trained run is needed), and the untrained twins of their configs only when
    ``untrained`` is asked for."""
    if methods is None:
        from harness.plugins import discover

        methods = discover()
    out = Path(options.out)
    kinds = _csv(options.kinds) or (['demo'] if options.demo else ['full', 'ablation'])
    splits = parse_splits(options.regdb_splits, DEMO_REGDB_SPLITS if options.demo else REGDB_SPLITS)
    datasets = _csv(options.datasets) or list(DATASETS)
    roots = {ds: getattr(options, f'data_root_{ds}') for ds in DATASETS}
    if options.demo:
        for ds in datasets:
            roots[ds] = roots.get(ds) or str(out / 'data' / ds)
    official_only = getattr(options, 'official_only', False)
    if official_only and not (options.official or options.official_checkpoint):
        raise OfficialError(
            '--official-only plans the re-scored official runs alone: name them with --official '
            "(the methods' declared releases) and/or --official-checkpoint METHOD:DATASET=PATH"
        )
    # Re-scoring only: the untrained twins only when asked for (--untrained), even with --demo.
    untrained = options.untrained
    if untrained is None:
        untrained = options.demo and not official_only
    runs = build_plan(
        methods,
        out,
        names=_csv(options.methods),
        datasets=datasets,
        kinds=kinds,
        configs=_csv(options.configs),
        regdb_splits=splits,
        data_roots=roots,
        cfg_options=options.cfg_options,
        untrained=untrained and not official_only,
    )
    official = official_plan(options, runs, methods, out)
    if official_only:
        # The floor beside each re-scored row, when asked for: its config's untrained network.
        scored = {(t.config, t.split) for t in official}
        floors = [scored_twin(r, 'untrained') for r in runs if (r.config, r.split) in scored]
        runs = official + (floors if untrained else [])
        if options.runner == DEFAULT_RUNNER:
            plan_configs(runs)
        return runs, roots
    # The authors' weights right after the training runs: a fetch that fails holds up nothing.
    first_scored = next((i for i, r in enumerate(runs) if not r.trains), len(runs))
    runs[first_scored:first_scored] = official
    if options.runner == DEFAULT_RUNNER:  # (another engine reads its configs its own way)
        plan_configs(runs)
    return runs, roots


def plan_configs(runs) -> None:
    """Load every planned config as its runs will (refusing a config file or ``--cfg-options``
    with a key the run would not use, before anything is planned or run), and stamp each run
    with its config hash, which its directory's record must have for the run to be done."""
    from harness.engine.config import config_hash, load_config

    hashes: dict[tuple, str] = {}
    for r in runs:
        options = r.run_options()
        options.pop('protocol.split', None)  # (the hash is the same for every split)
        key = (r.config, repr(sorted(options.items())))
        if key not in hashes:
            hashes[key] = config_hash(load_config(r.config, r.run_options()))
        r.config_hash = hashes[key]


def changed_runs(runs) -> list[tuple]:
    """``(run, the keys that differ)`` for each run whose directory holds a run of another
    config (see :func:`harness.leaderboard.plan.config_change`)."""
    from harness.leaderboard.plan import config_change

    out = []
    for r in runs:
        why = config_change(r)
        if why:
            out.append((r, why))
    return out


def changed_message(changed: list[tuple], options: LeaderboardOptions) -> str:
    """The refusal of a leaderboard whose runs' directories hold runs of another config: which
    runs, the keys that differ, and the two ways on."""
    from harness.leaderboard.plan import retry_command

    lines = '\n'.join(f'  {r.key}: {why}' for r, why in changed[:20])
    more = f'\n  ... and {len(changed) - 20} more' if len(changed) > 20 else ''
    again = retry_command([r for r, _ in changed], base_argv(options)) + ' --rerun'
    return (
        f'{len(changed)} run(s) under {options.out}/runs were made (or started) with another '
        f'config than the one planned now, so they are not done with it (old -> now):\n'
        f'{lines}{more}\n'
        'Nothing was run. Train them again with this config (the old record and checkpoints are '
        f'kept aside in each run directory, under superseded/):\n  {again}\n'
        'or give this config another --out.'
    )


def official_plan(options: LeaderboardOptions, runs, methods: dict, out: Path) -> list:
    """The scored-only runs of the authors' checkpoints (``--official``,
    ``--official-checkpoint``), with a note on stderr for what cannot be re-scored."""
    declared, given = (
        getattr(options, 'official', False),
        getattr(options, 'official_checkpoint', None),
    )
    if not (declared or given):
        return []
    from harness.official import parse_given, released_of, unreleased_note

    twins = official_runs(
        runs,
        methods,
        out,
        declared,
        [parse_given(g) for g in given or ()],
        trusted=getattr(options, 'trusted', False),
    )
    check_scored_files(twins, getattr(options, 'rerun', False))
    notes = replaced_releases(twins, methods) if declared else []
    if declared:
        planned = sorted({r.method for r in runs})
        notes += unreleased_note(methods, planned)
        if not twins:
            fits = sorted(f'{rel.config} ({m})' for m in planned for rel in released_of(methods[m]))
            notes.append(
                'no released checkpoint fits the planned configs'
                + (f'; the released ones fit {", ".join(fits)}' if fits else '')
            )
            if getattr(options, 'official_only', False):
                raise OfficialError('--official-only: nothing to re-score: ' + '; '.join(notes))
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
