"""Hooks that make mmengine runs resumable and exact under torch >= 2.6 (docs/engine.md)."""

from __future__ import annotations

import random
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer

from harness.registry import FUNCTIONS, HOOKS


def to_plain(obj: Any) -> Any:
    """numpy scalars/arrays -> Python scalars/tensors, recursively (weights_only-loadable)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, dict):
        return (
            type(obj)((k, to_plain(v)) for k, v in obj.items())
            if isinstance(obj, OrderedDict)
            else {k: to_plain(v) for k, v in obj.items()}
        )
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_plain(v) for v in obj)
    return obj


@HOOKS.register_module()
class SafeCheckpointHook(Hook):
    """Writes checkpoints that ``torch.load(weights_only=True)`` accepts, and reads them back.

    mmengine stores ``HistoryBuffer`` objects and numpy scalars, which torch >= 2.6 refuses to
    unpickle by default (mmengine#1655). They become plain dicts of tensors on save and are
    rebuilt on load (``after_load_checkpoint`` runs before the message hub is restored).

    Also stamps ``meta`` (see :func:`harness.checkpoints.describe_model`: method, config, config
    hash, number of classes) into every checkpoint, so that it loads without its dataset.
    """

    priority = 'VERY_LOW'

    def __init__(self, meta: dict | None = None, num_classes: int | None = None) -> None:
        self.meta = dict(meta or {})
        if num_classes is not None:
            self.meta['num_classes'] = int(num_classes)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        hub = checkpoint.get('message_hub')
        if hub is not None:
            hub['log_scalars'] = type(hub['log_scalars'])(
                (
                    k,
                    {
                        '__history_buffer__': True,
                        'log': torch.from_numpy(np.asarray(b._log_history, np.float64)),
                        'count': torch.from_numpy(np.asarray(b._count_history, np.int64)),
                        'max_length': int(b.max_length),
                    },
                )
                for k, b in hub['log_scalars'].items()
            )
            hub['runtime_info'] = to_plain(hub['runtime_info'])
        meta = to_plain(checkpoint.get('meta', {}))
        meta.update(self.meta)
        checkpoint['meta'] = meta

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        hub = checkpoint.get('message_hub')
        if hub is None:
            return
        hub['log_scalars'] = type(hub['log_scalars'])(
            (
                k,
                HistoryBuffer(b['log'].tolist(), b['count'].tolist(), b['max_length'])
                if isinstance(b, dict) and b.get('__history_buffer__')
                else b,
            )
            for k, b in hub['log_scalars'].items()
        )


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Re-seeds python/numpy/torch from (seed, epoch) before every training epoch.

    mmengine does not checkpoint RNG states, so without this a resumed run draws different
    augmentations and dropout masks than an uninterrupted one.
    """

    priority = 'VERY_HIGH'

    def before_train_epoch(self, runner) -> None:
        seed = (int(runner.seed or 0) * 1000 + runner.epoch) % 2**31
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)


@HOOKS.register_module()
class ChannelsLastHook(Hook):
    """Puts the model in channels_last memory format (faster convolutions with AMP on GPUs)."""

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        runner.model.to(memory_format=torch.channels_last)


@FUNCTIONS.register_module()
def seed_worker(worker_id: int, **_: Any) -> None:
    """DataLoader workers seed numpy/random from torch's per-worker seed.

    torch derives that seed from the main-process RNG, which EpochSeedHook makes a function of the
    epoch: augmentations then differ between epochs yet repeat exactly after a resume.
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
