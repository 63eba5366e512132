"""One experiment: train a method config on its protocol, test it, write ``record.json``.

The mmengine Runner does the loops; this module turns a method config (laid over its protocol
base) into the Runner's config, so methods never write dataloaders, evaluators or hooks.
"""

from __future__ import annotations

import copy
import signal
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from mmengine.config import Config
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from harness.checkpoints import ResumePoint, describe_model, latest_checkpoint, resume_point
from harness.data.cache import DEFAULT_RESIZE_FILTER
from harness.data.datasets import train_set
from harness.data.samplers import check_shardable
from harness.dist import launch_world_size
from harness.engine import backends
from harness.engine.config import (
    check_protocol_unchanged,
    config_hash,
    is_optimistic,
    load_config,
    protocol_changes,
    run_config_change,
)
from harness.engine.provenance import collect, now
from harness.engine.runner import HarnessRunner
from harness.errors import (
    ConfigError,
    HarnessError,
    HarnessWarning,
    Interrupted,
    RunFailed,
    StopSignal,
    describe,
)
from harness.locks import hold_run_dir
from harness.models.pretrained import without_pretrained
from harness.records import (
    HASH_SCHEME,
    RECORD_NAME,
    RECORD_SOURCES,
    check_source,
    create_record,
    error_info,
    write_record,
    write_record_or_warn,
)
from protocols.chance import gallery_identities
from protocols.datasets import load_dataset


def _selection_epochs(cfg: Config) -> list[int]:
    """The finished-epoch counts an optimistic best-epoch rule tests after (default: the last)."""
    return sorted(int(e) for e in (cfg.selection.get('epochs') or [cfg.train_cfg['max_epochs']]))


def _dataloader(cfg: Config, train: bool, world_size: int = 1) -> dict:
    common = dict(
        dataset=cfg.protocol['dataset'],
        data_root=str(cfg.data_root),
        protocol=dict(cfg.protocol),
        input_size=tuple(cfg.input_size),
        cache_dir=cfg.get('cache_dir'),
        resize_filter=cfg.get('resize_filter', DEFAULT_RESIZE_FILTER),
    )
    loader = cfg.get('train_dataloader', {}) if train else {}
    workers = int(loader.get('num_workers', 0))
    out = dict(
        num_workers=workers,
        persistent_workers=False,
        pin_memory=torch.cuda.is_available(),
        collate_fn=dict(type='default_collate'),
    )
    if workers:
        # Per-epoch, resumable augmentation streams in workers (docs/engine.md, "Exact resume").
        out['worker_init_fn'] = dict(type='harness.seed_worker')
    if train:
        sampler = dict(cfg.sampler)
        expected = 2 * sampler['num_ids'] * sampler['num_instances']
        batch = loader.get('batch_size', expected)
        if batch != expected:
            raise ValueError(
                f'train_dataloader.batch_size = {batch} but the sampler lays out '
                f'2 x {sampler["num_ids"]} ids x {sampler["num_instances"]} = {expected} '
                'images per batch; set batch_size to that product'
            )
        # Under DDP each process loads its share of every global batch (harness.dist).
        check_shardable(expected // 2, world_size)
        dataset = dict(
            type='VIReIDTrainSet', pipeline=list(cfg.get('train_pipeline', [])), **common
        )
        if cfg.get('train_views') is not None:
            # several views per sampled image (CAJ): the network batch exceeds the sampler's
            dataset['views'] = cfg.train_views
            out['collate_fn'] = dict(type='harness.collate_views')
        out.update(
            batch_size=expected // world_size, sampler=sampler, drop_last=False, dataset=dataset
        )
    else:
        test = cfg.get('test', {})
        # On a GPU the training loader's workers keep test batches coming while the device
        # computes; on a CPU the model is the bottleneck and workers only add start-up time.
        default_workers = (
            int(cfg.get('train_dataloader', {}).get('num_workers', 0))
            if torch.cuda.is_available()
            else 0
        )
        out.update(
            batch_size=int(test.get('batch_size', 64)),
            num_workers=int(test.get('num_workers', default_workers)),
            sampler=dict(type='ShardSampler'),
            batch_sampler=dict(type='ModalityBatchSampler'),
            dataset=dict(type='VIReIDTestSet', **common),
        )
        out.pop('worker_init_fn', None)
    return out


def _evaluator(cfg: Config) -> dict:
    return dict(
        type='VIReIDMetric',
        dataset=cfg.protocol['dataset'],
        data_root=str(cfg.data_root),
        protocol=dict(cfg.protocol),
        distance=cfg.get('test', {}).get('distance', 'cosine'),
        selection_criterion=cfg.get('selection', {}).get('criterion', 'mean-r1'),
    )


def _merged(base: dict, over: Mapping | None) -> dict:
    """``over`` laid over ``base``, recursively for dicts (a runtime section over the defaults)."""
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def runtime_settings(cfg: Config) -> dict[str, Any]:
    """The Runner arguments the runtime layer (``protocols/configs/_runtime.py``) sets.

    ``log``/``checkpoint`` fill the logger's and checkpoint hook's arguments and ``default_hooks``
    wins over them; ``visualizer.vis_backends`` may name backends by type alone
    (``[LocalVisBackend,TensorboardVisBackend]``).
    """
    hooks = dict(
        logger=dict(type='LoggerHook', interval=cfg.log['interval']),
        checkpoint=dict(
            type='CheckpointHook',
            interval=cfg.checkpoint['interval'],
            max_keep_ckpts=cfg.checkpoint['max_keep_ckpts'],
        ),
    )
    out: dict[str, Any] = dict(default_hooks=_merged(hooks, cfg.get('default_hooks')))
    visualizer = copy.deepcopy(cfg.get('visualizer'))
    if isinstance(visualizer, dict) and visualizer.get('vis_backends') is not None:
        visualizer['vis_backends'] = [
            dict(type=b) if isinstance(b, str) else b for b in visualizer['vis_backends']
        ]
    out['visualizer'] = visualizer
    if cfg.get('log_processor') is not None:
        out['log_processor'] = copy.deepcopy(cfg.log_processor)
    env = _merged(
        dict(
            cudnn_benchmark=False,
            mp_cfg=dict(mp_start_method='fork'),
            dist_cfg=dict(backend=None),
        ),
        cfg.get('env_cfg'),
    )
    if env['dist_cfg'].get('backend') is None:
        env['dist_cfg']['backend'] = 'nccl' if torch.cuda.is_available() else 'gloo'
    # mmengine sets cuDNN autotuning from env_cfg after harness.engine.backends did: a config's
    # `backends` entry is the one place that states it, so it wins over the runtime default.
    if 'cudnn_benchmark' in (cfg.get('backends') or {}):
        env['cudnn_benchmark'] = backends.resolve(cfg.backends)['cudnn_benchmark']
    out['env_cfg'] = env
    return out


def runner_config(
    cfg: Config,
    work_dir: str | Path,
    num_classes: int,
    train: bool = True,
    resume: bool = True,
    load_from: str | None = None,
    launcher: str = 'none',
    log_level: str = 'INFO',
) -> dict:
    """The mmengine Runner config for a loaded method config."""
    cfg = copy.deepcopy(cfg)
    world_size = launch_world_size(launcher)
    model = dict(cfg.model, num_classes=num_classes)
    if load_from is not None and not resume:
        model = without_pretrained(model)
    channels_last = bool(cfg.get('channels_last', False))
    if channels_last:
        model['data_preprocessor'] = dict(
            model.get('data_preprocessor') or dict(type='ReIDDataPreprocessor'), channels_last=True
        )
    # What a checkpoint says about itself, so that it loads without its config's dataset.
    meta = describe_model(
        cfg.get('entry', {}).get('method'),
        num_classes,
        config=Path(cfg.config_file).name,
        config_hash=config_hash(cfg),
        config_hash_scheme=HASH_SCHEME,
        dataset=cfg.protocol['dataset'],
    )
    out: dict[str, Any] = dict(
        default_scope='harness',
        experiment_name=f'{Path(cfg.config_file).stem}_{uuid.uuid4().hex[:8]}',
        work_dir=str(work_dir),
        model=model,
        test_dataloader=_dataloader(cfg, train=False),
        test_cfg=dict(),
        test_evaluator=_evaluator(cfg),
        custom_hooks=[
            dict(type='EpochSeedHook'),
            dict(type='SafeCheckpointHook', meta=meta),
            dict(type='ProgressFileHook'),
        ]
        + ([dict(type='ChannelsLastHook')] if channels_last else [])
        + list(cfg.get('custom_hooks', [])),
        randomness=dict(cfg.randomness),
        launcher=launcher,
        log_level=log_level,
        resume=resume,
        load_from=load_from,
        **runtime_settings(cfg),
    )
    if world_size > 1:
        out['sync_bn'] = 'torch'  # BatchNorm statistics over the global batch (harness.dist)
    if not train:
        return out
    optim_wrapper = dict(cfg.optim_wrapper)
    amp = cfg.get('amp', {})
    # mmengine's AmpOptimWrapper refuses CPUs: the harness, not the method, picks the wrapper.
    if amp.get('enabled') and torch.cuda.is_available():
        optim_wrapper.update(type='AmpOptimWrapper', dtype=amp.get('dtype', 'float16'))
    else:
        optim_wrapper.setdefault('type', 'OptimWrapper')
    out.update(
        train_dataloader=_dataloader(cfg, train=True, world_size=world_size),
        optim_wrapper=optim_wrapper,
        param_scheduler=list(cfg.get('param_scheduler', [])),
        train_cfg=dict(
            by_epoch=True, max_epochs=int(cfg.train_cfg['max_epochs']), val_interval=10**9
        ),
    )
    if is_optimistic(cfg):
        out.update(
            val_dataloader=out['test_dataloader'],
            val_evaluator=out['test_evaluator'],
            val_cfg=dict(),
        )
        out['train_cfg'] = dict(
            type='ListedEpochsTrainLoop',
            max_epochs=int(cfg.train_cfg['max_epochs']),
            val_epochs=_selection_epochs(cfg),
        )
        out['default_hooks']['checkpoint'].update(save_best='reid/selection_score', rule='greater')
    return out


def build_runner(
    cfg: Config,
    work_dir: str | Path,
    train: bool = True,
    resume: bool = True,
    load_from: str | None = None,
    launcher: str = 'none',
    log_level: str = 'INFO',
    trusted: bool = False,
) -> Runner:
    """A :class:`HarnessRunner` for ``cfg``: checkpoints are read safely and strictly
    (``trusted``: with ``weights_only=False``) and written atomically."""
    num_classes = train_set(cfg.protocol['dataset'], cfg.data_root, cfg.protocol).num_classes
    rc = runner_config(cfg, work_dir, num_classes, train, resume, load_from, launcher, log_level)
    backends.apply(backends.resolve(cfg.get('backends')))
    runner = HarnessRunner.from_cfg(Config(rc))
    runner.trusted = trusted
    runner.method = cfg.get('entry', {}).get('method')
    runner.config_file = cfg.config_file
    return runner


def _method_info(cfg: Config) -> dict[str, Any]:
    entry = dict(cfg.get('entry', {}))
    method = entry.get('method', 'unknown')
    title = entry.get('label', method)
    try:
        from harness.plugins import get_method

        spec = get_method(method)
        return dict(
            method=method,
            method_title=spec.title,
            method_aliases=list(spec.aliases),
            plugin=spec.distribution,
            entry=entry,
        )
    except KeyError:
        return dict(method=method, method_title=title, method_aliases=[], plugin='', entry=entry)


def _results(runner: Runner) -> dict[str, Any]:
    metric = runner.test_evaluator.metrics[0]
    return {k: v.to_dict() for k, v in metric.results_by_setting.items()}


def _distributed(cfg: Config, launcher: str) -> dict[str, Any]:
    """How the run was spread over processes (one process: world_size 1)."""
    world_size = launch_world_size(launcher)
    per_modality = cfg.sampler['num_ids'] * cfg.sampler['num_instances']
    return dict(
        world_size=world_size,
        sync_bn=world_size > 1,
        global_batch=2 * per_modality,
        per_process_batch=2 * per_modality // world_size,
    )


def _recipe_change(runner: Runner, world_size: int) -> str | None:
    """Why a multi-process run does not train the one-process recipe, if it does not."""
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    if world_size > 1 and not getattr(model, 'gathers_global_batch', False):
        return (
            f'trained on {world_size} processes (--gpus-per-run {world_size}), but '
            f"{type(model).__name__} computes its batch-level losses on each process's "
            f'share of the batch (it does not declare gathers_global_batch, see '
            f'harness.dist): not the one-GPU recipe'
        )
    return None


def _keep_features(runner: Runner, cfg: Config, work_dir: Path) -> str | None:
    from mmengine.dist import is_main_process

    from harness.engine.metric import keep_test_features

    if not is_main_process():
        return None
    keep = cfg.get('test', {}).get('keep_features')
    return keep_test_features(runner.test_evaluator.metrics[0], keep, work_dir / 'features.npz')


def new_record(
    cfg: Config,
    config: str,
    work_dir: Path,
    comparable: bool,
    source: str = 'reproduced',
    not_comparable: list[str] | None = None,
) -> dict[str, Any]:
    """The record of a run of ``cfg`` before it starts; ``source`` says where its weights come from:
    'reproduced' (trained by this run), 'untrained' (its initial weights) or 'official'.
    ``not_comparable`` lists why the run is not comparable (empty when it is)."""
    check_source(source)
    return create_record(
        source=source,
        **_method_info(cfg),
        config=str(config),
        config_hash=config_hash(cfg),
        config_hash_scheme=HASH_SCHEME,
        dataset=cfg.protocol['dataset'],
        split=cfg.protocol.get('split'),
        protocol=dict(cfg.protocol),
        comparable=comparable,
        not_comparable=list(not_comparable or []),
        optimistic=is_optimistic(cfg),
        selection=cfg.selection['rule'],
        selection_cfg=dict(cfg.selection),
        distance=cfg.get('test', {}).get('distance', 'cosine'),
        results={},
        work_dir=str(work_dir),
        checkpoint=None,
        error=None,
    )


class RunState:
    """What :func:`recorded` must know of its body: whether the run itself has started (the
    Runner is built), which decides how a failure is raised; the Runner (how far it got) and how
    to continue the run, for the record of an interruption."""

    started = False
    runner: Runner | None = None
    resume = ''


@contextmanager
def _sigterm_stops() -> Iterator[None]:
    """SIGTERM (``kill``, a scheduler's time limit or preemption) raises
    :class:`~harness.errors.StopSignal` (recorded, then raised as
    :class:`~harness.errors.Interrupted`), so that the run is recorded as stopped instead of being
    left 'running'. Only in the main thread, and only where nothing else handles SIGTERM (a
    leaderboard worker in a Slurm job raises its own). A second SIGTERM ends the process."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise StopSignal('the run was sent SIGTERM', 'SIGTERM')

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _stop_signal(err: BaseException) -> str | None:
    """The signal that stopped the run ('SIGTERM', 'SIGINT'), if a signal did."""
    if isinstance(err, (Interrupted, StopSignal)):
        return err.signal_name
    if isinstance(err, KeyboardInterrupt):
        return 'SIGINT'
    return None


def _record_interruption(
    record: dict[str, Any], state: RunState, sig: str, kept: Path | None, work_dir: Path
) -> str:
    """The record's ``interruption`` (signal, epochs done, last checkpoint, how to continue) and
    the message that says it."""
    from mmengine.runner import BaseLoop

    loop = getattr(state.runner, '_train_loop', None)  # (the property would build it)
    done, total = (
        (int(loop.epoch), int(loop.max_epochs)) if isinstance(loop, BaseLoop) else (None,) * 2
    )
    record['interruption'] = dict(
        signal=sig,
        epochs_done=done,
        max_epochs=total,
        checkpoint=None if kept is None else str(kept),
        resume=state.resume,
    )
    where = f' after {done} of {total} epochs' if done is not None else ''
    keep = f'its last complete checkpoint {kept} is kept' if kept else 'no checkpoint was completed'
    return (
        f'the run was stopped by {sig}{where}: recorded in {work_dir / RECORD_NAME}; {keep}; '
        f'continue it with: {state.resume or "the same command"}'
    )


@contextmanager
def recorded(cfg: Config, work_dir: Path, record: dict[str, Any]) -> Iterator[RunState]:
    """Write ``record`` as 'running' (with provenance and the effective config), let the body fill
    ``results``, then write it 'done' (with the gallery sizes behind the chance level).

    On any error the record is written 'failed' with its cause and the last complete checkpoint
    (which is kept), and the error is raised: a fault found before the run started (a config, a
    dataset) as itself, one while it ran as :class:`~harness.errors.RunFailed` (exit code 1 on
    the command line). The body sets ``state.started`` once its Runner is built.
    """
    state = RunState()
    start = time.time()
    # A stop raised in an earlier run of this process is not this run's. (One raised in this run
    # is kept: mmengine formats the config of every checkpoint inside a bare ``except`` that turns
    # a SIGTERM arriving then into "SyntaxError: Failed to format the config file".)
    StopSignal.received = None
    try:
        fingerprint = load_dataset(cfg.protocol['dataset'], cfg.data_root).fingerprint()
        record['provenance'] = collect(
            int(cfg.randomness.get('seed', 0)), fingerprint, record.get('plugin', '')
        )
        work_dir.mkdir(parents=True, exist_ok=True)
        cfg.dump(str(work_dir / 'config.py'))
        write_record(work_dir / RECORD_NAME, record)
        with _sigterm_stops():
            yield state
        record['gallery_ids'] = gallery_identities(
            cfg.protocol['dataset'], cfg.data_root, cfg.protocol
        )
        record['status'] = 'done'
    except BaseException as err:
        record['status'] = 'failed'
        stop = StopSignal.received
        # A stop that other code turned into another error is recorded (and raised) as the stop.
        if stop is not None and not isinstance(err, (StopSignal, Interrupted, KeyboardInterrupt)):
            err = stop
        record['error'] = error_info(err)
        kept = latest_checkpoint(work_dir) if work_dir.is_dir() else None
        if kept is not None or record.get('source', 'reproduced') == 'reproduced':
            record['checkpoint'] = None if kept is None else str(kept)
        sig = _stop_signal(err)
        if sig is not None:
            message = _record_interruption(record, state, sig, kept, work_dir)
            if isinstance(err, KeyboardInterrupt):
                print(f'[vireid] {message}', file=sys.stderr)
                raise
            stopped = Interrupted(message, sig)
            if type(err) is StopSignal:  # (a subclass, such as a Slurm job's, names itself)
                record['error'] = error_info(stopped)
            raise stopped from err
        if not state.started or isinstance(err, HarnessError) or not isinstance(err, Exception):
            raise
        raise RunFailed(_failure_message(err, work_dir, kept), cause=err) from err
    finally:
        prov = record.setdefault('provenance', {})
        prov.update(finished=now(), wall_time_s=round(time.time() - start, 2))
        from mmengine.dist import is_main_process

        if is_main_process():
            write_record_or_warn(work_dir / RECORD_NAME, record, quiet=not state.started)


def _loaded(
    config: str,
    data_root: str | None,
    cfg_options: Mapping[str, Any] | None,
    allow_protocol_change: bool,
) -> tuple[Config, bool, list[str]]:
    """The config, whether the run is comparable, and why not."""
    cfg = load_config(config, cfg_options)
    if data_root is not None:
        cfg.data_root = str(data_root)
    comparable = check_protocol_unchanged(cfg, allow=allow_protocol_change)
    why = (
        []
        if comparable
        else [
            f'changes protocol fields: {", ".join(protocol_changes(cfg))} (--allow-protocol-change)'
        ]
    )
    return cfg, comparable, why


def _record_setup(record: dict[str, Any], runner: Runner, cfg: Config, launcher: str) -> None:
    """The numerical backends and the process layout the Runner set up, and whether a
    multi-process run still trains the one-process recipe."""
    record['provenance'].update(
        backends=backends.effective(), distributed=_distributed(cfg, launcher)
    )
    reason = _recipe_change(runner, launch_world_size(launcher))
    if reason:
        record['comparable'] = False
        record['not_comparable'].append(reason)


def run_experiment(
    config: str,
    work_dir: str,
    data_root: str | None = None,
    cfg_options: Mapping[str, Any] | None = None,
    resume: bool = True,
    allow_protocol_change: bool = False,
    launcher: str = 'none',
    log_level: str = 'INFO',
) -> dict[str, Any]:
    """Train (resuming from the run's latest complete checkpoint), test on every protocol setting,
    write ``work_dir/record.json`` atomically and return the record. A failure is recorded, then
    raised (see :func:`recorded`)."""
    work_dir = Path(work_dir)
    cfg, comparable, why = _loaded(config, data_root, cfg_options, allow_protocol_change)
    record = new_record(cfg, config, work_dir, comparable, not_comparable=why)
    with hold_run_dir(work_dir):
        point = _resume_point(cfg, work_dir) if resume else ResumePoint(None)
        latest = None if point.checkpoint is None else point.checkpoint.path
        with recorded(cfg, work_dir, record) as state:
            state.resume = _continue_command(config, work_dir, data_root, cfg_options)
            if latest is not None:
                record['provenance']['resumed_from'] = str(latest)
            if point.damaged:
                record['provenance']['damaged_checkpoints'] = [
                    dict(file=str(f), moved_to=str(aside), error=why)
                    for f, aside, why in point.damaged
                ]
            runner = build_runner(
                cfg,
                work_dir,
                train=True,
                resume=latest is not None,
                load_from=None if latest is None else str(latest),
                launcher=launcher,
                log_level=log_level,
            )
            state.started, state.runner = True, runner
            _record_setup(record, runner, cfg, launcher)
            runner.train()
            if record['optimistic']:
                best = runner.message_hub.get_info('best_ckpt')
                if best:
                    runner.load_checkpoint(best)
            runner.test()
            record['results'] = _results(runner)
            record['features'] = _keep_features(runner, cfg, work_dir)
            record['checkpoint'] = (
                (work_dir / 'last_checkpoint').read_text().strip()
                if (work_dir / 'last_checkpoint').is_file()
                else None
            )
    return record


def _resume_point(cfg: Config, work_dir: Path) -> ResumePoint:
    """Where the run in ``work_dir`` continues (a damaged latest checkpoint is moved aside and the
    one before it taken, which is said); refused when its checkpoint is of another config, whose
    training would otherwise go on under this one."""
    point = resume_point(work_dir)
    note = point.note()
    if note:
        warnings.warn(note, HarnessWarning, stacklevel=3)
    if point.checkpoint is not None:
        change = run_config_change(work_dir, cfg, point.checkpoint.meta)
        if change:
            raise ConfigError(
                f'{work_dir} holds a run of another config ({change}); resuming it would train '
                'one run under two configs. Train this config in another work dir (--work-dir), '
                'or start it afresh: `vireid train` without --resume, or `vireid leaderboard '
                '--rerun`, which keeps the old run aside'
            )
    return point


def _continue_command(
    config: str, work_dir: Path, data_root: str | None, cfg_options: Mapping[str, Any] | None
) -> str:
    """The ``vireid train`` command that continues this run from its last checkpoint."""
    import shlex

    argv = ['vireid', 'train', str(config), '--work-dir', str(work_dir), '--resume']
    if data_root is not None:
        argv += ['--data-root', str(data_root)]
    if cfg_options:
        argv += ['--cfg-options', *[f'{k}={v}' for k, v in cfg_options.items()]]
    return shlex.join(argv) + ' (a leaderboard run: start the same leaderboard command again)'


def score_run(
    config: str,
    work_dir: str,
    data_root: str | None = None,
    cfg_options: Mapping[str, Any] | None = None,
    source: str = 'untrained',
    checkpoint: str | None = None,
    allow_protocol_change: bool = False,
    launcher: str = 'none',
    log_level: str = 'INFO',
    resume: bool = True,
    trusted: bool = False,
    provenance: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Score a model of ``config`` without training it and write ``work_dir/record.json``.

    ``source='untrained'``: the network with exactly the initial weights its training run starts
    from (the Runner seeds before it builds the model: random init, or the ImageNet weights the
    config loads). Other sources (``'official'``: released weights converted to this harness)
    score ``checkpoint``, which must fit the model exactly. The record is a run record like a
    trained one, with its ``source``, so the leaderboard and tables treat both alike. ``resume``
    is accepted for the launchers' sake; scoring has nothing to resume. ``provenance`` is added
    to the record's provenance (an official run's file, md5 and origin).
    """
    scored = [s for s in RECORD_SOURCES if s != 'reproduced']
    if source not in scored:
        raise ValueError(
            f'score_run source must be one of {scored} (a reproduced record comes '
            f'from run_experiment), got {source!r}'
        )
    if (source == 'untrained') == (checkpoint is not None):
        why = 'an untrained model has no checkpoint' if checkpoint else 'pass the weights to score'
        raise ValueError(f'source {source!r}: {why}')
    if checkpoint is not None:
        # Read (and refuse) the file before the dataset is indexed and the model built.
        from harness.checkpoints import load_checkpoint

        load_checkpoint(checkpoint, trusted=trusted)
    work_dir = Path(work_dir)
    cfg, comparable, why = _loaded(config, data_root, cfg_options, allow_protocol_change)
    record = new_record(cfg, config, work_dir, comparable, source=source, not_comparable=why)
    # Nothing was selected on the test set here, whatever rule the config's training would use.
    selection = {'untrained': 'none (not trained)', 'official': "the authors' released checkpoint"}
    record.update(
        selection=selection.get(source, 'given checkpoint'),
        optimistic=False,
        checkpoint=None if checkpoint is None else str(checkpoint),
    )
    with hold_run_dir(work_dir), recorded(cfg, work_dir, record) as state:
        state.resume = 'the same command (scoring starts over)'
        record['provenance'].update(provenance or {})
        runner = build_runner(
            cfg,
            work_dir,
            train=False,
            resume=False,
            load_from=checkpoint,
            launcher=launcher,
            log_level=log_level,
            trusted=trusted,
        )
        state.started, state.runner = True, runner
        _record_setup(record, runner, cfg, launcher)
        runner.test()
        record['results'] = _results(runner)
        if source != 'untrained':  # (the trained run's figures draw the untrained network)
            record['features'] = _keep_features(runner, cfg, work_dir)
    return record


def _failure_message(err: BaseException, work_dir: Path, kept: Path | None) -> str:
    cause = describe(err) or type(err).__name__ + (f': {err}' if str(err) else '')
    keep = (
        f'its last complete checkpoint {kept} is kept; continue from it with --resume'
        if kept is not None
        else 'no checkpoint was completed'
    )
    return (
        f'the run failed: {cause}\n  recorded as failed in {work_dir / RECORD_NAME}; {keep} '
        f'(add --debug for the traceback)'
    )


def score_checkpoint(
    config: str,
    checkpoint: str,
    work_dir: str,
    data_root: str | None = None,
    cfg_options: Mapping[str, Any] | None = None,
    launcher: str = 'none',
    log_level: str = 'INFO',
    trusted: bool = False,
) -> dict[str, Any]:
    """Scores ``checkpoint`` (a harness checkpoint or a converted state dict) on the protocol.

    The checkpoint must fit the config's model exactly (:func:`harness.checkpoints.check_fit`);
    it is read with ``weights_only=True`` unless ``trusted``.
    """
    cfg = load_config(config, cfg_options)
    if data_root is not None:
        cfg.data_root = str(data_root)
    # Read (and refuse) the file before the dataset is indexed and the model built.
    from harness.checkpoints import load_checkpoint

    load_checkpoint(checkpoint, trusted=trusted)
    runner = build_runner(
        cfg,
        work_dir,
        train=False,
        resume=False,
        load_from=str(checkpoint),
        launcher=launcher,
        log_level=log_level,
        trusted=trusted,
    )
    metrics = runner.test()
    return dict(metrics=metrics, results=_results(runner), protocol=dict(cfg.protocol))
