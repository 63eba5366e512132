"""The cheap checks, in the order they run: the configs (and the protocol fields they must keep),
the data and the files the protocol needs, the ImageNet weights (preflight only), the disk.

They take seconds (images are decoded in parallel threads: the images of each dataset root's
decode-once cache entry, which a run writes whole; an entry that exists was decoded whole when it
was written, and is not decoded again) and report
every problem they find, each naming the run keys it would stop. ``vireid leaderboard`` runs them
before its first run starts, ``--dry-run`` marks the runs they would stop, ``--preflight`` adds
the weights and then measures.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.leaderboard.plan import RunSpec
from harness.leaderboard.preflight import disk as D
from harness.leaderboard.preflight.data import (
    DATASET_CHECKS,
    ImageLists,
    image_findings,
    protocol_key,
)
from harness.leaderboard.preflight.findings import Finding, errors
from harness.leaderboard.preflight.models import ModelShape, model_key, model_shape
from harness.leaderboard.preflight.weights import check_weights
from protocols.datasets import TRAIN_CLASSES
from protocols.evaluation import check_protocol


@dataclass
class RunContext:
    """What the checks learnt about one run (None where they could not tell)."""

    run: RunSpec
    cfg: Any = None
    root: Path | None = None
    lists: ImageLists | None = None
    shape: ModelShape | None = None

    @property
    def num_classes(self) -> int:
        if self.lists is not None:
            return self.lists.num_classes
        return TRAIN_CLASSES.get(self.run.dataset, 1000)


@dataclass
class Checked:
    """The findings of the cheap checks and what they learnt, per run key."""

    findings: list[Finding] = field(default_factory=list)
    contexts: dict[str, RunContext] = field(default_factory=dict)
    # seconds each check took, in the order they ran
    seconds: dict[str, float] = field(default_factory=dict)
    # decode-once cache entries (one per dataset root, input size and resize filter):
    # path -> (bytes, already there, keys of the runs reading it)
    cache_files: dict[Path, tuple[int, bool, set[str]]] = field(default_factory=dict)
    needs: list[D.Need] = field(default_factory=list)
    cache_keys: dict[tuple, str | None] = field(default_factory=dict, repr=False)

    @property
    def errors(self) -> list[Finding]:
        return errors(self.findings)


def _decode_workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return min(16, 2 * cpus)  # threads: PIL releases the GIL; twice the cores hides file reads


def cheap_checks(
    runs: Iterable[RunSpec],
    *,
    weights: bool = False,
    pending_roots: Iterable[str | Path] = (),
    reachable: Callable[[str], bool] | None = None,
    workers: int | None = None,
) -> Checked:
    """Check ``runs`` before any of them starts. ``pending_roots``: data roots that do not exist
    yet because the leaderboard generates them (``--demo``); their data is not checked.
    ``weights``: also check the ImageNet weights (``reachable`` tells whether a URL can be
    downloaded from here)."""
    out = Checked(contexts={r.key: RunContext(r) for r in runs})
    pending = {str(Path(p).absolute()) for p in pending_roots}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        out.seconds[name] = now - clock
        clock = now

    _configs(out)
    lap('configs and protocol')
    _data(out, pending, workers or _decode_workers())
    lap('data and protocol files')
    _shapes(out, strict=weights)
    if weights:
        _weights(out, reachable)
    lap('models and weights' if weights else 'models')
    _disk(out)
    lap('disk')
    return out


def _runs_of(out: Checked, match: Callable[[RunContext], bool]) -> tuple[str, ...]:
    return tuple(k for k, c in out.contexts.items() if match(c))


# --------------------------------------------------------------------------------------------------


def _configs(out: Checked) -> None:
    from harness.engine.config import load_config, protocol_changes

    # One load per config and user options: RegDB runs differ only in protocol.split, which the
    # protocol lets change, and is set on a copy.
    loaded: dict[tuple[str, str], Any] = {}
    for ctx in out.contexts.values():
        run = ctx.run
        key = (run.config, json.dumps(run.cfg_options, sort_keys=True, default=str))
        if key not in loaded:
            try:
                loaded[key] = load_config(run.config, run.run_options())
            except Exception as err:  # a config that cannot load stops every run of it
                loaded[key] = err
        cfg = loaded[key]
        if isinstance(cfg, Exception):
            continue
        ctx.cfg = copy.deepcopy(cfg)
        if run.split is not None:
            ctx.cfg.protocol = check_protocol(run.dataset, dict(cfg.protocol, split=run.split))
        ctx.root = Path(run.data_root or cfg.data_root).absolute()
    configs: dict[str, Any] = {}
    for (config, _), cfg in loaded.items():
        configs.setdefault(config, cfg)
    for config, cfg in configs.items():
        runs = _runs_of(out, lambda c, config=config: c.run.config == config)
        if isinstance(cfg, Exception):
            text = str(cfg) if Path(config).name in str(cfg) else f'{config}: {cfg}'
            out.findings.append(Finding('config', text, runs=runs))
            continue
        changes = protocol_changes(cfg)
        if changes:
            what = ', '.join(f'{k} = {f!r} (protocol: {b!r})' for k, (b, f) in changes.items())
            out.findings.append(
                Finding(
                    'protocol',
                    f'{config} changes protocol field(s) {what}, so its results would not be '
                    'comparable with the other methods; remove the setting(s) from the config '
                    'file (or from --cfg-options)',
                    runs=runs,
                )
            )


def _data(out: Checked, pending: set[str], workers: int) -> None:
    groups: dict[tuple[str, Path], list[RunContext]] = {}
    for ctx in out.contexts.values():
        if ctx.cfg is not None and str(ctx.root) not in pending:
            groups.setdefault((ctx.run.dataset, ctx.root), []).append(ctx)
    checked_images: list[tuple[str, Path, dict[str, set[str]]]] = []
    for (dataset, root), group in groups.items():
        check = DATASET_CHECKS.get(dataset)
        keys = tuple(c.run.key for c in group)
        if check is None:
            message = f'no data check for dataset {dataset!r} yet: {root} is not checked'
            out.findings.append(Finding('data', message, level='warning', runs=keys))
            continue
        protocols = {protocol_key(c.cfg.protocol): dict(c.cfg.protocol) for c in group}
        report = check(root, list(protocols.values()))
        for finding, pkey in report.findings:
            runs = tuple(
                c.run.key for c in group if pkey is None or protocol_key(c.cfg.protocol) == pkey
            )
            out.findings.append(Finding(finding.area, finding.message, finding.level, runs))
        images: dict[str, set[str]] = {}  # path -> run keys that would decode it
        for ctx in group:
            ctx.lists = report.lists.get(protocol_key(ctx.cfg.protocol))
            # A run decodes its root's whole cache entry when it is not there (its lists are rows
            # of it), so those images are the ones to check; an entry there was decoded whole.
            if ctx.lists is None or not report.pool or _cached(out, ctx, report.pool):
                continue
            for r in report.pool:
                images.setdefault(r.path, set()).add(ctx.run.key)
        checked_images.append((dataset, root, images))
    for dataset, root, images in checked_images:
        for finding, paths in image_findings(root, images, workers, dataset):
            runs = tuple(sorted({k for p in paths for k in images[p]}))
            out.findings.append(Finding(finding.area, finding.message, finding.level, runs))


def _cached(out: Checked, ctx: RunContext, pool: tuple) -> bool:
    """Whether the decode-once cache entry of the run's dataset root, input size and filter exists
    (then every image of it decoded when it was written); notes the entry and its size for the
    disk check either way."""
    from harness.data.cache import DEFAULT_RESIZE_FILTER, cache_key, default_cache_dir, npy_bytes

    cfg = ctx.cfg
    folder = Path(cfg.get('cache_dir') or default_cache_dir()).absolute()
    size = tuple(int(v) for v in cfg.input_size)
    resize = cfg.get('resize_filter', DEFAULT_RESIZE_FILTER)
    memo = (id(pool), size, resize)  # one pool object per dataset root
    if memo not in out.cache_keys:
        try:
            out.cache_keys[memo] = cache_key(ctx.root, pool, size, resize)
        except OSError:  # an image vanished: the image check names it
            out.cache_keys[memo] = None
    key = out.cache_keys[memo]
    if key is None:
        return False
    path = folder / f'{key}.npy'
    if path not in out.cache_files:
        nbytes = npy_bytes(len(pool), size)  # the file harness.data.cache writes
        out.cache_files[path] = (nbytes, path.is_file(), set())
    out.cache_files[path][2].add(ctx.run.key)
    return out.cache_files[path][1]


def _shapes(out: Checked, strict: bool) -> None:
    shapes: dict[str, ModelShape | Exception] = {}
    failed: dict[str, list[str]] = {}
    for ctx in out.contexts.values():
        if ctx.cfg is None:
            continue
        key = model_key(ctx.cfg)
        if key not in shapes:
            try:
                shapes[key] = model_shape(ctx.cfg, ctx.num_classes)
            except Exception as err:
                shapes[key] = err
        if isinstance(shapes[key], Exception):
            failed.setdefault(f'{ctx.run.config}: {shapes[key]}', []).append(ctx.run.key)
        else:
            ctx.shape = shapes[key]
    for text, runs in failed.items():
        config, _, err = text.partition(': ')
        if strict:
            message = f'{config}: its model cannot be built ({err}); fix the model section'
            out.findings.append(Finding('config', message, runs=tuple(runs)))
        else:
            message = f'{config}: checkpoint size unknown, its model cannot be built ({err})'
            out.findings.append(Finding('disk', message, level='warning', runs=tuple(runs)))


def _weights(out: Checked, reachable: Callable[[str], bool] | None) -> None:
    loads: dict[tuple[int, str | None], list[str]] = {}
    for ctx in out.contexts.values():
        # Scored official checkpoints replace the initial weights: no ImageNet file is read.
        if ctx.shape is None or ctx.run.source not in ('reproduced', 'untrained'):
            continue
        for load in ctx.shape.pretrained:
            loads.setdefault(load, []).append(ctx.run.config_stem)
    for finding, configs in check_weights(loads, reachable):
        runs = _runs_of(out, lambda c, cs=configs: c.run.config_stem in cs and c.shape is not None)
        out.findings.append(Finding(finding.area, finding.message, finding.level, runs))


def _disk(out: Checked) -> None:
    for path, (nbytes, there, runs) in out.cache_files.items():
        if not there:
            out.needs.append(D.Need(path.parent, 'cache', nbytes, tuple(sorted(runs))))
    largest = None  # (bytes, run): the checkpoint a run writes before deleting its oldest
    for ctx in out.contexts.values():
        if ctx.cfg is None or ctx.shape is None:
            continue
        run, cfg = ctx.run, ctx.cfg
        if run.trains:
            copies = D.optimizer_copies(cfg.optim_wrapper)
            per_file = ctx.shape.state_bytes + copies * ctx.shape.param_bytes
            nbytes = D.checkpoints_kept(cfg) * per_file
            out.needs.append(D.Need(Path(run.work_dir), 'checkpoints', nbytes, (run.key,)))
            largest = max(largest or (0, run), (per_file, run), key=lambda x: x[0])
        if ctx.lists is not None and run.source != 'untrained':
            nbytes = D.features_bytes(cfg, len(ctx.lists.test), ctx.shape.feature_dim)
            out.needs.append(D.Need(Path(run.work_dir), 'features', nbytes, (run.key,)))
    if largest is not None:
        nbytes, run = largest
        out.needs.append(D.Need(Path(run.work_dir), 'checkpoints', nbytes, (run.key,)))
    out.findings += D.check_disk(out.needs)
