"""What a leaderboard will cost before it starts: training iterations per run, expected GPU time.

Iterations = epochs (``train_cfg.max_epochs``) x iterations per epoch, and an epoch is what the
config's own sampler yields: the sampler is built over the training labels and modalities, so its
rule (AGW's ``max(#visible, #infrared) // (P*K) + 1`` batches, MPANet's full pass over every
identity's images, a plugin's own) is used as such. The labels come from the dataset index when the
data root holds the dataset, else from the released dataset's image counts (``protocols.counts``,
spread evenly over the identities); a demo run whose synthetic data is not generated yet reads
them from the generator's plan, which fixes every image count before any pixel is drawn. Time
needs a throughput figure: seconds per iteration measured on the training device by
``vireid bench train CONFIG`` (kept in ``<cache>/throughput.json``, with a digest of the config
file: a figure of another version of the config is not used), or given with
``--seconds-per-iter``. Only training is counted: the test after a run takes seconds.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.atomic import write_json_atomic
from harness.data.cache import default_cache_dir
from harness.leaderboard.plan import RunSpec, run_state
from protocols.counts import TRAIN_SIZES, UNPUBLISHED
from protocols.datasets.base import Modality

THROUGHPUT_FILE = 'throughput.json'


@dataclass
class RunCost:
    """The cost of one run; ``seconds_per_iter`` is None when no throughput figure is known."""

    run: RunSpec
    state: str
    epochs: int | None = None
    iters_per_epoch: int | None = None
    size_source: str = ''
    seconds_per_iter: float | None = None
    speed_source: str = ''

    @property
    def iterations(self) -> int | None:
        if self.epochs is None or self.iters_per_epoch is None:
            return None
        return self.epochs * self.iters_per_epoch

    @property
    def hours(self) -> float | None:
        if self.iterations == 0:  # a scored-only run (e.g. the untrained twin)
            return 0.0
        if self.iterations is None or self.seconds_per_iter is None:
            return None
        return self.iterations * self.seconds_per_iter / 3600.0


class _Labels:
    """What a sampler reads from a training set: one label and one modality per image."""

    def __init__(self, labels: Iterable[int], modalities: Iterable[int]) -> None:
        self.labels = np.asarray(list(labels), dtype=np.int64)
        self.modalities = np.asarray(list(modalities), dtype=np.int64)


class UnknownSize(ValueError):
    """No dataset at hand and no published count to stand in for it."""


def _from_counts(dataset: str) -> _Labels:
    """The released training set's sizes, each modality's images spread evenly over its ids."""
    if dataset not in TRAIN_SIZES:
        flag = f'--data-root-{dataset}'
        reason = UNPUBLISHED.get(dataset, f'no released counts of {dataset!r} are known')
        raise UnknownSize(f'{reason}; give {flag} DIR (the dataset) to count them')
    size = TRAIN_SIZES[dataset]
    labels, modalities = [], []
    for modality, total in ((Modality.VISIBLE, size.visible), (Modality.INFRARED, size.infrared)):
        per_id = np.full(size.ids, total // size.ids)
        per_id[: total % size.ids] += 1
        labels.append(np.repeat(np.arange(size.ids), per_id))
        modalities.append(np.full(total, int(modality)))
    return _Labels(np.concatenate(labels), np.concatenate(modalities))


def synthetic_training_labels(
    dataset: str, split: int = 1, ids: int | None = None, seed: int | None = None
) -> _Labels:
    """The training set ``protocols.datasets.synthetic.generate(dataset, ..., ids, seed)`` writes
    (SYSU: train + val ids; RegDB: split ``split``'s train ids; LLCM: its training lists), read
    from the generator's plan
    without rendering an image. Defaults: the demo leaderboard's data."""
    from harness.leaderboard.session import DEMO_DATA_SEED
    from protocols.datasets import synthetic
    from protocols.datasets.synthetic import llcm as synthetic_llcm
    from protocols.datasets.synthetic import regdb as synthetic_regdb
    from protocols.datasets.synthetic import sysu as synthetic_sysu

    if dataset not in synthetic.DEFAULT_IDS:
        raise ValueError(f'no synthetic {dataset!r}; choose among {sorted(synthetic.DEFAULT_IDS)}')
    ids = synthetic.DEFAULT_IDS[dataset] if ids is None else ids
    seed = DEMO_DATA_SEED if seed is None else seed
    labels, modalities = [], []
    if dataset == 'sysu':
        plan = synthetic_sysu.plan(ids, seed)
        label = {pid: i for i, pid in enumerate(sorted(set(plan.train) | set(plan.val)))}
        for (cam, pid), n in sorted(plan.counts.items()):
            if pid in label:
                labels += [label[pid]] * n
                modalities += [int(synthetic_sysu.modality(cam))] * n
    elif dataset == 'llcm':
        plan = synthetic_llcm.plan(ids, seed)
        for (pid, _, modality), n in sorted(plan.counts.items()):
            if pid in plan.train:
                labels += [plan.label(pid)] * n
                modalities += [int(modality)] * n
    else:
        train, _ = synthetic_regdb.split(ids, seed, split)
        per_id = synthetic_regdb.IMAGES_PER_ID
        for modality in (Modality.VISIBLE, Modality.INFRARED):
            labels += [i for i in range(len(train)) for _ in range(per_id)]
            modalities += [int(modality)] * (len(train) * per_id)
    return _Labels(labels, modalities)


def training_labels(
    dataset: str, data_root: str | None, protocol: Mapping[str, Any], cache: dict | None = None
) -> tuple[_Labels, str]:
    """(labels and modalities of the training set, where they came from)."""
    from harness.data.datasets import train_set
    from protocols.datasets.base import DatasetLayoutError

    key = (dataset, str(data_root), protocol.get('split'))
    if cache is not None and key in cache:
        return cache[key]
    if data_root and Path(data_root).is_dir():
        try:
            ts = train_set(dataset, data_root, dict(protocol))
            labels = _Labels(ts.labels, (int(r.modality) for r in ts.records))
            out = (labels, f'dataset index of {data_root}')
        except (DatasetLayoutError, OSError, ValueError) as err:
            reason = f'{data_root} unreadable: {str(err)[:80]}'
            if dataset not in TRAIN_SIZES:
                raise UnknownSize(f'{reason}; {UNPUBLISHED.get(dataset, "")}') from None
            out = (_from_counts(dataset), f'released counts ({reason})')
    else:
        out = (_from_counts(dataset), f'released counts (no dataset at {data_root})')
    if cache is not None:
        cache[key] = out
    return out


def iterations_per_epoch(cfg, labels: _Labels) -> int:
    """Batches in one epoch of the config's training sampler over ``labels``."""
    from harness.registry import DATA_SAMPLERS

    sampler = DATA_SAMPLERS.build(dict(cfg.sampler, dataset=labels))
    batch = getattr(sampler, 'batch_size', None) or int(
        cfg.get('train_dataloader', {}).get('batch_size', 1)
    )
    return math.ceil(len(sampler) / batch)


# ------------------------------------------------------------------------------------------------
# Throughput figures


def throughput_path(cache_dir: str | Path | None = None) -> Path:
    """``<cache>/throughput.json``; the cache is ``$VIREID_CACHE`` (default ``~/.cache/vireid``)."""
    return Path(cache_dir if cache_dir is not None else default_cache_dir()) / THROUGHPUT_FILE


def config_digest(config: str | Path) -> str | None:
    """sha1 of the config file's bytes (None if unreadable): a figure measured with other
    settings (batch size, model) no longer describes the config."""
    try:
        return hashlib.sha1(Path(config).read_bytes()).hexdigest()
    except OSError:
        return None


def record_throughput(config: str | Path, seconds_per_iter: float, **details: Any) -> Path:
    """Keep a measured figure for ``config`` (by file stem) in the throughput file; return it."""
    path = throughput_path()
    data = read_throughputs(path)
    data[Path(config).stem] = dict(
        seconds_per_iter=float(seconds_per_iter),
        config=str(config),
        config_sha1=config_digest(config),
        measured=time.strftime('%Y-%m-%d %H:%M'),
        **details,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, data)
    return path


def read_throughputs(path: str | Path | None = None) -> dict[str, dict]:
    path = throughput_path() if path is None else Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def parse_seconds_per_iter(text: str | None) -> tuple[float | None, dict[str, float]]:
    """``--seconds-per-iter``: one number for every run, or ``STEM=SECONDS,...`` per config."""
    if not text:
        return None, {}
    default, per_config = None, {}
    for part in filter(None, (p.strip() for p in text.split(','))):
        stem, eq, value = part.rpartition('=')
        try:
            seconds = float(value)
        except ValueError:
            raise ValueError(
                f'--seconds-per-iter: cannot read {part!r}; expected e.g. 0.35 or '
                f'agw_sysu=0.35,mmn_sysu=0.5'
            ) from None
        if not seconds > 0 or not math.isfinite(seconds):
            raise ValueError(f'--seconds-per-iter: {part!r} must be a positive number of seconds')
        if eq:
            per_config[stem] = seconds
        else:
            default = seconds
    return default, per_config


# ------------------------------------------------------------------------------------------------
# The plan


def cost_plan(
    runs: Iterable[RunSpec],
    seconds_per_iter: str | None = None,
    throughputs: Mapping[str, dict] | None = None,
) -> list[RunCost]:
    """The cost of every run (iterations, and time where a throughput figure exists)."""
    from harness.engine.config import load_config

    runs = list(runs)
    default, per_config = parse_seconds_per_iter(seconds_per_iter)
    stems = {r.config_stem for r in runs}
    unknown = sorted(set(per_config) - stems)
    if unknown:
        raise ValueError(
            f'--seconds-per-iter names no planned config: {", ".join(unknown)}; the '
            f"plan's configs are {', '.join(sorted(stems))}"
        )
    throughputs = read_throughputs() if throughputs is None else throughputs
    labels_cache: dict = {}
    out = []
    for run in runs:
        cost = RunCost(run=run, state=run_state(run))
        if not getattr(run, 'trains', True):  # scored only: no training iteration
            cost.epochs = cost.iters_per_epoch = 0
            cost.speed_source = f'scored only ({run.source})'
            out.append(cost)
            continue
        try:
            cfg = load_config(run.config, run.run_options())
            cost.epochs = int(cfg.train_cfg['max_epochs'])
            root = run.data_root or cfg.get('data_root')
            if run.kind == 'demo' and not (root and Path(root).is_dir()):
                key = ('synthetic', run.dataset, cfg.protocol.get('split'))
                if key not in labels_cache:
                    labels_cache[key] = synthetic_training_labels(
                        run.dataset, int(cfg.protocol.get('split') or 1)
                    )
                cost.iters_per_epoch = iterations_per_epoch(cfg, labels_cache[key])
                cost.size_source = (
                    "the synthetic demo data's plan (generated when the leaderboard starts)"
                )
            else:
                labels, cost.size_source = training_labels(
                    run.dataset, root, cfg.protocol, labels_cache
                )
                cost.iters_per_epoch = iterations_per_epoch(cfg, labels)
        except UnknownSize as err:
            cost.size_source = f'{run.config_stem}: not computed ({err})'
        except Exception as err:  # a dry run shows every run; this one's cost stays unknown
            cost.size_source = (
                f'{run.config_stem}: not computed ({type(err).__name__}: {str(err)[:100]})'
            )
        stem = run.config_stem
        entry = throughputs.get(stem)
        if stem in per_config or default is not None:
            cost.seconds_per_iter = per_config.get(stem, default)
            cost.speed_source = '--seconds-per-iter'
        elif isinstance(entry, dict) and entry.get('config_sha1') not in (
            None,
            config_digest(run.config),
        ):
            cost.speed_source = (
                f'no figure (bench train of {entry.get("measured", "?")} used '
                'another version of the config)'
            )
        elif isinstance(entry, dict) and 'seconds_per_iter' in entry:
            cost.seconds_per_iter = float(entry['seconds_per_iter'])
            cost.speed_source = (
                f'bench train, {entry.get("device", "?")}, {entry.get("measured", "?")}'
            )
        out.append(cost)
    return out


def _text(value: Any, fmt: str = '') -> str:
    return '-' if value is None else format(value, fmt)


def format_cost_plan(costs: list[RunCost], gpus_per_run: int = 1) -> str:
    """The cost table and the plan's totals, as printed by ``vireid leaderboard --dry-run``."""
    if not costs:
        return 'cost plan: no runs'
    width = max(len(c.run.key) for c in costs)
    lines = [
        'cost plan (training iterations; time = iterations x seconds per iteration):',
        f'  {"state":8s} {"run":{width}s} {"epochs":>6s} x {"it/epoch":>8s} = '
        f'{"iterations":>10s} {"s/iter":>7s} {"GPU-h":>7s}  throughput from',
    ]
    for c in costs:
        hours = None if c.hours is None else c.hours * gpus_per_run
        lines.append(
            f'  {c.state:8s} {c.run.key:{width}s} {_text(c.epochs):>6s} x '
            f'{_text(c.iters_per_epoch):>8s} = {_text(c.iterations, ","):>10s} '
            f'{_text(c.seconds_per_iter, ".3f"):>7s} {_text(hours, ".2f"):>7s}  '
            f'{c.speed_source or "no figure"}'
        )
    trained = [c for c in costs if c.iterations != 0]
    for source in sorted({c.size_source for c in costs} - {''}):
        lines.append(f'  iterations per epoch from: {source}')
    lines.append(_totals('plan', costs, gpus_per_run))
    todo = [c for c in costs if c.state != 'done']
    if len(todo) != len(costs):
        lines.append(_totals('still to run', todo, gpus_per_run))
    if any(c.seconds_per_iter is None and c.iterations for c in trained):
        lines.append(
            '  runs without a figure: `vireid leaderboard --preflight` (same options) measures '
            'a step of each config on this machine; or measure one with `vireid bench train '
            'CONFIG --data-root DIR` on the training GPU, or pass --seconds-per-iter SECONDS '
            '(or STEM=SECONDS,...)'
        )
    if gpus_per_run > 1:
        lines.append(
            f'  GPU-hours count all {gpus_per_run} GPUs of a run, assuming the figure is '
            'per GPU and training scales linearly'
        )
    return '\n'.join(lines)


def _totals(label: str, costs: list[RunCost], gpus_per_run: int) -> str:
    iterations = sum(c.iterations or 0 for c in costs)
    trained = [c for c in costs if c.iterations != 0]
    timed = [c for c in trained if c.hours is not None]
    text = f'  {label}: {len(costs)} runs'
    if len(trained) < len(costs):
        text += f' ({len(costs) - len(trained)} scored only)'
    text += f', {iterations:,} iterations'
    if timed or not trained:
        text += f', {sum(c.hours for c in timed) * gpus_per_run:.1f} GPU-hours'
        if len(timed) < len(trained):
            text += f' ({len(timed)} of the {len(trained)} training runs have a throughput figure)'
    elif all(c.seconds_per_iter is None for c in trained):
        text += ', GPU-hours unknown (no throughput figure)'
    else:
        text += ', GPU-hours unknown'
    return text
