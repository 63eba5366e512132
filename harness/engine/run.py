"""One experiment: train a method config on its protocol, test it, write ``record.json``.

The mmengine Runner does the loops; this module turns a method config (laid over its protocol
base) into the Runner's config, so methods never write dataloaders, evaluators or hooks.
"""
from __future__ import annotations

import copy
import time
import traceback
import uuid
from pathlib import Path
from typing import Any, Mapping

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from harness.data.datasets import train_set
from harness.engine.config import (check_protocol_unchanged, config_hash, is_optimistic, load_config)
from harness.atomic import write_json_atomic
from harness.engine.provenance import collect, now
from protocols.datasets import load_dataset

RECORD = 'record.json'
SCHEMA = 1


def _selection_epochs(cfg: Config) -> tuple[int, int]:
    """(val_begin, val_interval) for an optimistic best-epoch rule given as a list of epochs."""
    epochs = sorted(cfg.selection.get('epochs') or [cfg.train_cfg['max_epochs']])
    steps = {b - a for a, b in zip(epochs, epochs[1:])}
    if len(steps) > 1:
        raise ValueError(f'selection.epochs must be evenly spaced, got {epochs}')
    return epochs[0], (steps.pop() if steps else 1)


def _dataloader(cfg: Config, train: bool) -> dict:
    common = dict(dataset=cfg.protocol['dataset'], data_root=str(cfg.data_root), protocol=dict(cfg.protocol),
                  input_size=tuple(cfg.input_size), cache_dir=cfg.get('cache_dir'))
    loader = cfg.get('train_dataloader', {}) if train else {}
    workers = int(loader.get('num_workers', 0))
    out = dict(num_workers=workers, persistent_workers=False, pin_memory=torch.cuda.is_available(),
               collate_fn=dict(type='default_collate'))
    if workers:
        # Per-epoch, resumable augmentation streams in workers (engine_notes §6).
        out['worker_init_fn'] = dict(type='harness.seed_worker')
    if train:
        sampler = dict(cfg.sampler)
        expected = 2 * sampler['num_ids'] * sampler['num_instances']
        batch = loader.get('batch_size', expected)
        if batch != expected:
            raise ValueError(f'train_dataloader.batch_size = {batch} but the sampler lays out '
                             f'2 x {sampler["num_ids"]} ids x {sampler["num_instances"]} = {expected} '
                             'images per batch; set batch_size to that product')
        out.update(batch_size=expected, sampler=sampler, drop_last=False,
                   dataset=dict(type='VIReIDTrainSet', pipeline=list(cfg.get('train_pipeline', [])), **common))
    else:
        test = cfg.get('test', {})
        # On a GPU the training loader's workers keep test batches coming while the device
        # computes; on a CPU the model is the bottleneck and workers only add start-up time.
        default_workers = int(cfg.get('train_dataloader', {}).get('num_workers', 0)) \
            if torch.cuda.is_available() else 0
        out.update(batch_size=int(test.get('batch_size', 64)),
                   num_workers=int(test.get('num_workers', default_workers)),
                   sampler=dict(type='DefaultSampler', shuffle=False),
                   batch_sampler=dict(type='ModalityBatchSampler'),
                   dataset=dict(type='VIReIDTestSet', **common))
        out.pop('worker_init_fn', None)
    return out


def _evaluator(cfg: Config) -> dict:
    return dict(type='VIReIDMetric', dataset=cfg.protocol['dataset'], data_root=str(cfg.data_root),
                protocol=dict(cfg.protocol), distance=cfg.get('test', {}).get('distance', 'cosine'))


def without_pretrained(model: dict) -> dict:
    """The model config with every ``pretrained`` switch off: a checkpoint replaces the weights,
    so ImageNet files need not be on the machine to test or export a trained model."""
    if isinstance(model, dict):
        return {k: False if k == 'pretrained' else without_pretrained(v) for k, v in model.items()}
    return model


def runner_config(cfg: Config, work_dir: str | Path, num_classes: int, train: bool = True,
                  resume: bool = True, load_from: str | None = None, launcher: str = 'none',
                  log_level: str = 'INFO') -> dict:
    """The mmengine Runner config for a loaded method config."""
    cfg = copy.deepcopy(cfg)
    model = dict(cfg.model, num_classes=num_classes)
    if load_from is not None and not resume:
        model = without_pretrained(model)
    channels_last = bool(cfg.get('channels_last', False))
    if channels_last:
        model['data_preprocessor'] = dict(model.get('data_preprocessor') or dict(type='ReIDDataPreprocessor'),
                                          channels_last=True)
    out: dict[str, Any] = dict(
        default_scope='harness',
        experiment_name=f'{Path(cfg.config_file).stem}_{uuid.uuid4().hex[:8]}',
        work_dir=str(work_dir), model=model,
        test_dataloader=_dataloader(cfg, train=False), test_cfg=dict(), test_evaluator=_evaluator(cfg),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=cfg.log['interval']),
            checkpoint=dict(type='CheckpointHook', interval=cfg.checkpoint['interval'],
                            max_keep_ckpts=cfg.checkpoint['max_keep_ckpts'])),
        custom_hooks=[dict(type='EpochSeedHook'), dict(type='SafeCheckpointHook', num_classes=num_classes)]
        + ([dict(type='ChannelsLastHook')] if channels_last else []) + list(cfg.get('custom_hooks', [])),
        randomness=dict(cfg.randomness), launcher=launcher, log_level=log_level,
        env_cfg=dict(cudnn_benchmark=bool(cfg.get('cudnn_benchmark', False)),
                     mp_cfg=dict(mp_start_method='fork'),
                     dist_cfg=dict(backend='nccl' if torch.cuda.is_available() else 'gloo')),
        resume=resume, load_from=load_from,
    )
    if not train:
        return out
    optim_wrapper = dict(cfg.optim_wrapper)
    amp = cfg.get('amp', {})
    # AmpOptimWrapper refuses CPUs (engine_notes §4): the harness, not the method, picks it.
    if amp.get('enabled') and torch.cuda.is_available():
        optim_wrapper.update(type='AmpOptimWrapper', dtype=amp.get('dtype', 'float16'))
    else:
        optim_wrapper.setdefault('type', 'OptimWrapper')
    out.update(train_dataloader=_dataloader(cfg, train=True), optim_wrapper=optim_wrapper,
               param_scheduler=list(cfg.get('param_scheduler', [])),
               train_cfg=dict(by_epoch=True, max_epochs=int(cfg.train_cfg['max_epochs']),
                              val_interval=10**9))
    if is_optimistic(cfg):
        begin, interval = _selection_epochs(cfg)
        out.update(val_dataloader=out['test_dataloader'], val_evaluator=out['test_evaluator'], val_cfg=dict())
        out['train_cfg'].update(val_begin=begin, val_interval=interval)
        out['default_hooks']['checkpoint'].update(save_best='reid/selection_score', rule='greater')
    return out


def build_runner(cfg: Config, work_dir: str | Path, train: bool = True, resume: bool = True,
                 load_from: str | None = None, launcher: str = 'none', log_level: str = 'INFO') -> Runner:
    num_classes = train_set(cfg.protocol['dataset'], cfg.data_root, cfg.protocol).num_classes
    rc = runner_config(cfg, work_dir, num_classes, train, resume, load_from, launcher, log_level)
    return Runner.from_cfg(Config(rc))


def _method_info(cfg: Config) -> dict[str, Any]:
    entry = dict(cfg.get('entry', {}))
    method = entry.get('method', 'unknown')
    title = entry.get('label', method)
    try:
        from harness.plugins import get_method
        spec = get_method(method)
        return dict(method=method, method_title=spec.title, method_aliases=list(spec.aliases),
                    plugin=spec.distribution, entry=entry)
    except KeyError:
        return dict(method=method, method_title=title, method_aliases=[], plugin='', entry=entry)


def _results(runner: Runner) -> dict[str, Any]:
    metric = runner.test_evaluator.metrics[0]
    return {k: v.to_dict() for k, v in metric.results_by_setting.items()}


def run_experiment(config: str, work_dir: str, data_root: str | None = None,
                   cfg_options: Mapping[str, Any] | None = None, resume: bool = True,
                   allow_protocol_change: bool = False, launcher: str = 'none',
                   log_level: str = 'INFO') -> dict[str, Any]:
    """Train (resuming from ``work_dir/last_checkpoint``), test on every protocol setting, write
    ``work_dir/record.json`` atomically and return the record. A failure is recorded, then raised."""
    work_dir = Path(work_dir)
    cfg = load_config(config, cfg_options)
    if data_root is not None:
        cfg.data_root = str(data_root)
    comparable = check_protocol_unchanged(cfg, allow=allow_protocol_change)
    record: dict[str, Any] = dict(
        schema=SCHEMA, status='running', **_method_info(cfg), config=str(config),
        config_hash=config_hash(cfg), dataset=cfg.protocol['dataset'], split=cfg.protocol.get('split'),
        protocol=dict(cfg.protocol), comparable=comparable, optimistic=is_optimistic(cfg),
        selection=cfg.selection['rule'], distance=cfg.get('test', {}).get('distance', 'cosine'),
        results={}, work_dir=str(work_dir), checkpoint=None, error=None)
    start = time.time()
    try:
        fingerprint = load_dataset(cfg.protocol['dataset'], cfg.data_root).fingerprint()
        record['provenance'] = collect(int(cfg.randomness.get('seed', 0)), fingerprint, record.get('plugin', ''))
        work_dir.mkdir(parents=True, exist_ok=True)
        cfg.dump(str(work_dir / 'config.py'))
        write_json_atomic(work_dir / RECORD, record)
        runner = build_runner(cfg, work_dir, train=True, resume=resume, launcher=launcher, log_level=log_level)
        runner.train()
        if record['optimistic']:
            best = runner.message_hub.get_info('best_ckpt')
            if best:
                runner.load_checkpoint(best)
        runner.test()
        record['results'] = _results(runner)
        record['checkpoint'] = (work_dir / 'last_checkpoint').read_text().strip() \
            if (work_dir / 'last_checkpoint').is_file() else None
        record['status'] = 'done'
    except BaseException as err:
        record['status'] = 'failed'
        record['error'] = dict(type=type(err).__name__, message=str(err), traceback=traceback.format_exc())
        raise
    finally:
        prov = record.setdefault('provenance', {})
        prov.update(finished=now(), wall_time_s=round(time.time() - start, 2))
        from mmengine.dist import is_main_process
        if is_main_process():
            write_json_atomic(work_dir / RECORD, record)
    return record


def score_checkpoint(config: str, checkpoint: str, work_dir: str, data_root: str | None = None,
                    cfg_options: Mapping[str, Any] | None = None, launcher: str = 'none',
                    log_level: str = 'INFO') -> dict[str, Any]:
    """Scores ``checkpoint`` (a harness checkpoint or a converted state dict) on the protocol."""
    cfg = load_config(config, cfg_options)
    if data_root is not None:
        cfg.data_root = str(data_root)
    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f'checkpoint {checkpoint} does not exist')
    runner = build_runner(cfg, work_dir, train=False, resume=False, load_from=str(checkpoint),
                          launcher=launcher, log_level=log_level)
    metrics = runner.test()
    return dict(metrics=metrics, results=_results(runner), protocol=dict(cfg.protocol))
