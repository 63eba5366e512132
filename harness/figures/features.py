"""Test features of a run's trained network and of the same network untrained, extracted once.

The trained features are the ones the run's test kept (``features.npz``) when they are there;
otherwise, and always for the untrained network, they are extracted here the way the test does it
(the harness test set and its modality-pure batches, ``model.test_step``) and kept under
``figures/features/`` in the file format ``vireid score`` reads, with a key file that says what they
were extracted from, so drawing again does not extract again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmengine.dataset import DefaultSampler
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope
from mmengine.runner import set_random_seed
from torch.utils.data import DataLoader, default_collate

from harness.data.cache import cache_key
from harness.data.datasets import VIReIDTestSet, train_set
from harness.data.samplers import ModalityBatchSampler
from harness.engine.config import config_hash
from harness.figures.source import RunSource
from harness.models.pretrained import without_pretrained
from harness.plugins import discover
from harness.registry import MODELS
from protocols.scoring import load_features, save_features


def num_classes(source: RunSource) -> int:
    """Training identities of the run's protocol (the classifier size of its checkpoint)."""
    return train_set(source.dataset, source.data_root, source.protocol).num_classes


def trained_model(source: RunSource, device: str) -> torch.nn.Module:
    """The run's network with its checkpoint's weights, through the public loader."""
    from harness.api import load_model

    return load_model(
        source.config_path,
        source.require_checkpoint(),
        device=device,
        num_classes=num_classes(source),
    )


def untrained_model(source: RunSource, device: str) -> torch.nn.Module:
    """The run's network at random initialisation from the run's seed (ImageNet weights off)."""
    discover()
    set_random_seed(source.seed)
    with DefaultScope.overwrite_default_scope('harness'):
        model = MODELS.build(
            without_pretrained(dict(source.cfg.model, num_classes=num_classes(source)))
        )
    if hasattr(model, 'init_weights'):
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.WARNING)  # init_weights logs every parameter at INFO
        try:
            model.init_weights()  # as the Runner does before training
        finally:
            logger.setLevel(level)
    return model.to(device).eval()


@torch.no_grad()
def extract(model: torch.nn.Module, source: RunSource, batch_size: int | None = None) -> np.ndarray:
    """Features (N x D, float32) of ``source.records``, extracted as the run's test does."""
    cfg = source.cfg
    data = VIReIDTestSet(
        source.dataset,
        str(source.data_root),
        source.protocol,
        tuple(cfg.input_size),
        cfg.get('cache_dir'),
    )
    size = batch_size or int(cfg.get('test', {}).get('batch_size', 64))
    loader = DataLoader(
        data,
        batch_sampler=ModalityBatchSampler(DefaultSampler(data, shuffle=False), size),
        collate_fn=default_collate,
    )
    feats: list[torch.Tensor | None] = [None] * len(data)
    for batch in loader:
        for out in model.test_step(batch):
            feats[out['index']] = out['feat']
    array = torch.stack(feats).to(torch.float32).numpy()
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array).all(1)).sum())
        raise RuntimeError(f'{bad} features of {source.run_dir} are NaN/inf; the network diverged')
    return array


def _key(source: RunSource, kind: str) -> dict[str, Any]:
    key: dict[str, Any] = dict(
        kind=kind,
        config=config_hash(source.cfg),
        images=cache_key(source.data_root, source.records, source.cfg.input_size),
    )
    if kind == 'trained':
        ckpt = source.require_checkpoint().resolve()
        stat = ckpt.stat()
        key['checkpoint'] = dict(path=str(ckpt), size=stat.st_size, mtime_ns=stat.st_mtime_ns)
    else:
        key['seed'] = source.seed
    return key


def features(
    source: RunSource, kind: str, cache_dir: Path, device: str = 'cpu', use_kept: bool = True
) -> tuple[np.ndarray, str]:
    """(features in ``source.records`` order, where they came from) for 'trained' or 'untrained'."""
    if kind not in ('trained', 'untrained'):
        raise ValueError(f'kind must be "trained" or "untrained", got {kind!r}')
    if kind == 'trained' and use_kept:
        kept = source.kept_features()
        if kept is not None:
            return kept, f"kept by the run's test ({source.record['features']})"
    # Why the run's own features were passed over, said wherever these come from instead.
    note = f' ({source.kept_problem})' if kind == 'trained' and source.kept_problem else ''
    key = _key(source, kind)
    file, key_file = cache_dir / f'{kind}.npz', cache_dir / f'{kind}.json'
    if file.is_file() and key_file.is_file():
        try:
            same = json.loads(key_file.read_text()) == key
        except json.JSONDecodeError:
            same = False
        if same:
            paths, feats = load_features(file)
            if paths == [r.path for r in source.records]:
                return feats, f'extracted earlier ({file.name}){note}'
    model = trained_model(source, device) if kind == 'trained' else untrained_model(source, device)
    feats = extract(model, source)
    save_features(file, [r.path for r in source.records], feats)
    key_file.write_text(json.dumps(key, indent=2) + '\n')
    what = (
        f'the checkpoint {key["checkpoint"]["path"]}'
        if kind == 'trained'
        else f'random initialisation, seed {source.seed}'
    )
    return feats, f'extracted from {what}{note}'
