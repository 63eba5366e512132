"""``vireid leaderboard --preflight``: the cheap checks, the Slurm partition, then the measured
steps, turned into a projected time per run and in total.

When a cheap check fails, every problem is reported and nothing is measured. Otherwise each
distinct (model config, input size, batch, precision) is measured once
(:mod:`harness.leaderboard.preflight.measure`) and the figure reused by every run of it; the
protocol evaluation is timed once per dataset and feature length (a RegDB split is the size of
every other). A run's projected time is its training iterations (the cost plan,
:mod:`harness.leaderboard.cost`) times the step, plus its test: the extraction batches times the
measured batch, plus the evaluation. Nothing is written into run directories.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from harness.leaderboard.plan import RunSpec
from harness.leaderboard.preflight import disk as D
from harness.leaderboard.preflight.cheap import Checked, RunContext, cheap_checks
from harness.leaderboard.preflight.findings import Finding, errors, format_findings
from harness.leaderboard.preflight.measure import evaluation_seconds, measure_in_subprocess
from harness.leaderboard.preflight.models import model_key

MEASURE_TIMEOUT_S = 3600  # one config's steps; a CPU step of a full config takes a minute or two


@dataclass
class Projection:
    """One run's projected cost; ``hours`` None when its config could not be measured."""

    key: str
    config: str
    iterations: int | None
    train_s: float | None
    test_s: float | None

    @property
    def hours(self) -> float | None:
        if self.train_s is None or self.test_s is None:
            return None
        return (self.train_s + self.test_s) / 3600


@dataclass
class PreflightReport:
    findings: list[Finding]
    checked: Checked
    measurements: dict[str, dict] = field(default_factory=dict)  # by config stem
    evaluations: dict[str, float] = field(default_factory=dict)  # 'dataset root (dim)' -> s
    projections: list[Projection] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    measured: bool = False
    jobs: int = 1  # runs at a time (local launcher): the total wall time is shared among them

    @property
    def exit_code(self) -> int:
        return 2 if errors(self.findings) else 0


def _say(stream: TextIO | None, text: str) -> None:
    if stream is not None:
        print(f'[preflight] {text}', file=stream, flush=True)


def run_preflight(
    runs: Iterable[RunSpec],
    *,
    launcher: str = 'local',
    partition: str | None = None,
    gpus_per_run: int = 1,
    cpus_per_run: int | None = None,
    time_min: int | None = None,
    pending_roots: Iterable[str | Path] = (),
    reachable: Callable[[str], bool] | None = None,
    measure: Callable[[dict], dict] | None = None,
    steps: int = 2,
    jobs: int = 1,
    stream: TextIO | None = sys.stderr,
) -> PreflightReport:
    """Check and measure ``runs`` (the ones a leaderboard would start). ``jobs``: runs at a time
    on this machine (local launcher); on a CPU each is measured with its share of the cores, as
    the launcher gives it, and the total wall time is divided among them."""
    runs = list(runs)
    start = time.perf_counter()
    checked = cheap_checks(runs, weights=True, pending_roots=pending_roots, reachable=reachable)
    report = PreflightReport(list(checked.findings), checked, seconds=dict(checked.seconds))
    if launcher == 'slurm':
        t = time.perf_counter()
        report.findings += partition_findings(partition, gpus_per_run, cpus_per_run, time_min)
        report.seconds['slurm partition'] = time.perf_counter() - t
    report.seconds['cheap checks'] = time.perf_counter() - start
    if errors(report.findings):
        _say(stream, 'problems found: the measured steps are skipped')
        return report
    report.jobs = jobs if launcher == 'local' else 1
    threads = None
    if launcher == 'local' and 'OMP_NUM_THREADS' not in os.environ:
        threads = max(1, _cpus() // max(1, jobs))  # as LocalLauncher gives each run
    _measure(report, runs, measure or measure_in_subprocess, steps, threads, stream)
    if launcher == 'slurm' and time_min:
        for p in report.projections:
            if p.hours is not None and p.hours * 60 > time_min:
                report.findings.append(
                    Finding(
                        'slurm',
                        f'{p.key}: projected {p.hours:.1f} h on the measured device exceeds '
                        f'--time-min {time_min} ({time_min / 60:.1f} h): Slurm stops the job at '
                        'its limit and the next `vireid leaderboard` resumes it from its last '
                        'checkpoint; a longer --time-min saves the restarts',
                        level='warning',
                        runs=(p.key,),
                    )
                )
    report.seconds['total'] = time.perf_counter() - start
    return report


def partition_findings(
    partition: str | None, gpus: int, cpus: int | None, time_min: int | None
) -> list[Finding]:
    """Whether the partition offers what each run requests (GPUs, CPUs, time) per node."""
    from harness.leaderboard.slurm import partition_resources

    where = f'partition {partition!r}' if partition else 'the default partition'
    nodes = partition_resources(partition)
    if nodes is None:
        message = f'sinfo cannot tell what {where} offers: GPUs, CPUs and time are not checked'
        return [Finding('slurm', message, level='warning')]
    out = []
    most = {k: max((n[k] or 0) for n in nodes) for k in ('gpus', 'cpus')}
    if gpus > most['gpus']:
        out.append(
            Finding(
                'slurm',
                f'--gpus-per-run {gpus}: the nodes of {where} have at most {most["gpus"]} GPU(s) '
                f'(sinfo %G), so no job could start; ask for {most["gpus"]} or fewer, or name a '
                'partition with more',
            )
        )
    if cpus and most['cpus'] and cpus > most['cpus']:
        out.append(
            Finding(
                'slurm',
                f'--cpus-per-run {cpus}: the nodes of {where} have at most {most["cpus"]} CPUs '
                f'(sinfo %c); ask for {most["cpus"]} or fewer',
            )
        )
    limits = [n['time_min'] for n in nodes]
    if time_min and None not in limits and time_min > max(limits):
        out.append(
            Finding(
                'slurm',
                f'--time-min {time_min}: {where} allows at most {max(limits)} minutes per job '
                f'(sinfo %l), so sbatch would refuse every job; pass --time-min {max(limits)} or '
                'less',
            )
        )
    return out


def _measure_key(ctx: RunContext) -> str:
    cfg = ctx.cfg
    amp = cfg.get('amp', {}) or {}
    return json.dumps(
        [
            model_key(cfg),
            dict(cfg.sampler),
            cfg.get('test', {}).get('batch_size', 64),
            bool(amp.get('enabled')),
            amp.get('dtype'),
            bool(cfg.get('channels_last', False)),
        ],
        sort_keys=True,
        default=str,
    )


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _measure(
    report: PreflightReport,
    runs: list[RunSpec],
    measure: Callable[[dict], dict],
    steps: int,
    threads: int | None,
    stream: TextIO | None,
) -> None:
    from harness.leaderboard.cost import cost_plan

    t = time.perf_counter()
    contexts = report.checked.contexts
    groups: dict[str, list[RunContext]] = {}
    for ctx in contexts.values():
        groups.setdefault(_measure_key(ctx), []).append(ctx)
    results: dict[str, dict] = {}
    for i, (key, group) in enumerate(groups.items(), 1):
        first = group[0]
        stems = sorted({c.run.config_stem for c in group})
        _say(stream, f'measuring {", ".join(stems)} ({i}/{len(groups)}): {steps} training steps')
        spec = dict(
            config=first.run.config,
            cfg_options=first.run.run_options(),
            num_classes=first.num_classes,
            steps=steps,
            threads=threads,
        )
        result = measure(spec)
        results[key] = result
        if 'error' in result:
            report.findings.append(
                Finding(
                    'measure',
                    f'{first.run.config}: a training step failed: {result["error"]}',
                    runs=tuple(c.run.key for c in group),
                )
            )
            continue
        if not result.get('loss_finite', True):
            report.findings.append(
                Finding(
                    'measure',
                    f'{first.run.config}: the loss of a training step is {result["loss"]} '
                    '(random weights, random pixels); check the losses and the learning rate',
                    level='warning',
                    runs=tuple(c.run.key for c in group),
                )
            )
        for stem in stems:
            report.measurements[stem] = result
    report.seconds['training steps'] = time.perf_counter() - t
    t = time.perf_counter()
    evaluations: dict[tuple, float] = {}
    for ctx in contexts.values():
        result = results[_measure_key(ctx)]
        if 'error' in result or ctx.lists is None:
            continue
        eval_key = (ctx.run.dataset, str(ctx.root), result['feature_dim'])
        if eval_key not in evaluations:
            _say(stream, f'timing the {ctx.run.dataset} evaluation ({result["feature_dim"]}-d)')
            evaluations[eval_key] = evaluation_seconds(
                ctx.run.dataset,
                str(ctx.root),
                dict(ctx.cfg.protocol),
                result['feature_dim'],
                list(ctx.lists.test),
            )
            name = f'{ctx.run.dataset} {ctx.root} ({result["feature_dim"]}-d features)'
            report.evaluations[name] = evaluations[eval_key]
    report.seconds['evaluation'] = time.perf_counter() - t
    costs = {c.run.key: c for c in cost_plan(runs, throughputs={})}
    for ctx in contexts.values():
        result = results[_measure_key(ctx)]
        cost = costs.get(ctx.run.key)
        iterations = cost.iterations if cost is not None else None
        projection = Projection(ctx.run.key, ctx.run.config_stem, iterations, None, None)
        if 'error' not in result and ctx.lists is not None:
            step = result['step_s'][-1]
            projection.train_s = (iterations or 0) * step if iterations is not None else None
            batches = math.ceil(len(ctx.lists.test) / result['test_batch_size'])
            evaluation = evaluations[(ctx.run.dataset, str(ctx.root), result['feature_dim'])]
            tests = _tests_per_run(ctx.cfg) if ctx.run.trains else 1
            projection.test_s = tests * (batches * result['extract_s'] + evaluation)
        report.projections.append(projection)
    report.measured = True


def _tests_per_run(cfg: Any) -> int:
    """Tests a training run makes: one, or one per listed epoch of an optimistic selection rule."""
    from harness.engine.config import is_optimistic

    if not is_optimistic(cfg):
        return 1
    return max(1, len(cfg.selection.get('epochs') or [cfg.train_cfg['max_epochs']]))


# --------------------------------------------------------------------------------------------------
# Printing


def _hours(h: float | None) -> str:
    return '-' if h is None else f'{h:.2f}'


def format_report(report: PreflightReport) -> str:
    """The findings, then (when the steps were measured) one row per config and the totals."""
    lines = [format_findings(report.findings)]
    checked = report.checked
    if report.measured:
        lines += ['', *_table(report)]
    lines += ['', *_disk_lines(checked)]
    timing = ', '.join(f'{k} {v:.1f} s' for k, v in report.seconds.items())
    lines.append(f'preflight time: {timing}')
    if not report.measured:
        lines.append(
            'measured steps: skipped (fix the problems above, then run --preflight again)'
            if errors(report.findings)
            else 'measured steps: none'
        )
    return '\n'.join(lines)


def _table(report: PreflightReport) -> list[str]:
    from tabulate import tabulate

    by_config: dict[str, list[Projection]] = {}
    for p in report.projections:
        by_config.setdefault(p.config, []).append(p)
    needs: dict[str, int] = {}
    contexts = report.checked.contexts
    for need in report.checked.needs:
        if need.what == 'cache':
            continue
        for key in need.runs:
            stem = contexts[key].run.config_stem
            needs[stem] = needs.get(stem, 0) + need.nbytes
    rows = []
    device = None
    for stem, projections in by_config.items():
        m = report.measurements.get(stem, {})
        device = device or m.get('device')
        hours = [p.hours for p in projections]
        known = [h for h in hours if h is not None]
        rows.append(
            dict(
                config=stem,
                runs=len(projections),
                batch=m.get('batch_size', '-'),
                input='x'.join(map(str, m.get('input_size', []))) or '-',
                **{
                    'step s': f'{m["step_s"][-1]:.2f}' if 'step_s' in m else '-',
                    f'peak {m.get("peak_kind", "memory")}': D.fmt_bytes(m['peak_bytes'])
                    if 'peak_bytes' in m
                    else '-',
                    'test batch s': f'{m["extract_s"]:.2f}' if 'extract_s' in m else '-',
                    'disk (runs)': D.fmt_bytes(needs.get(stem, 0)),
                    'iterations/run': _mean_int(p.iterations for p in projections),
                    'h/run': _hours(sum(known) / len(known) if known else None),
                    'h total': _hours(sum(known) if len(known) == len(hours) else None),
                },
            )
        )
    known = [p.hours for p in report.projections if p.hours is not None]
    lines = [
        f'measured on {device or "-"} (random weights and pixels: one training step of each '
        'config at its full batch, one test batch; projections = iterations x step + test)',
        tabulate(rows, headers='keys', disable_numparse=True),
        f'total: {len(report.projections)} runs, {sum(known):.1f} device-hours projected'
        + (
            f' ({len(report.projections) - len(known)} runs without a figure)'
            if len(known) < len(report.projections)
            else ''
        )
        + (
            f'; {report.jobs} at a time: about {sum(known) / report.jobs:.1f} h of wall time'
            if report.jobs > 1
            else ''
        ),
    ]
    for name, seconds in report.evaluations.items():
        lines.append(f'protocol evaluation on random features, {name}: {seconds:.1f} s')
    return lines


def _mean_int(values: Iterable[int | None]) -> str:
    values = [v for v in values if v is not None]
    return f'{round(sum(values) / len(values)):,}' if values else '-'


def _disk_lines(checked: Checked) -> list[str]:
    by_what: dict[str, int] = {}
    for need in checked.needs:
        by_what[need.what] = by_what.get(need.what, 0) + need.nbytes
    cached = sum(1 for _, there, _ in checked.cache_files.values() if there)
    parts = [f'{what} {D.fmt_bytes(n)}' for what, n in by_what.items() if n]
    text = 'disk to be written: ' + (', '.join(parts) if parts else 'nothing known')
    if checked.cache_files:
        text += f' ({cached} of {len(checked.cache_files)} cache entries already there)'
    return [text]
