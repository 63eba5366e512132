"""Python entry points for using trained models outside the CLI."""

from __future__ import annotations

from pathlib import Path

import torch
from mmengine.registry import DefaultScope

from harness.checkpoints import load_checkpoint, load_weights
from harness.engine.config import load_config
from harness.errors import CheckpointError
from harness.models.base import VIReIDModel
from harness.models.pretrained import without_pretrained
from harness.plugins import discover, resolve_config
from harness.registry import MODELS
from protocols.datasets import TRAIN_CLASSES


def read_checkpoint(
    path: str | Path, trusted: bool = False
) -> tuple[dict[str, torch.Tensor], dict]:
    """(state_dict, meta) of a harness checkpoint or of a plain/converted state dict.

    Read with ``weights_only=True`` unless ``trusted`` (see :mod:`harness.checkpoints`).
    """
    ckpt = load_checkpoint(path, trusted=trusted)
    return ckpt.state_dict, ckpt.meta


def load_model(
    config_path: str | Path,
    checkpoint: str | Path | None = None,
    device: str = 'cpu',
    num_classes: int | None = None,
    trusted: bool = False,
) -> VIReIDModel:
    """The model of ``config_path`` in eval mode on ``device``, weights from ``checkpoint``.

    ``config_path`` is a config file or the name of an installed plugin's config (``agw_sysu``).

    The number of training identities (classifier rows) comes from ``num_classes``, else the
    checkpoint (trained and converted checkpoints record it), else the config's protocol
    (SYSU-MM01 395, RegDB 206: :data:`protocols.datasets.TRAIN_CLASSES`), so no dataset needs to
    be on the machine. The checkpoint must fit the model exactly (strict keys and shapes).
    """
    discover()
    cfg = load_config(resolve_config(config_path))
    ckpt = load_checkpoint(checkpoint, trusted=trusted) if checkpoint is not None else None
    if num_classes is None and ckpt is not None:
        num_classes = ckpt.meta.get('num_classes')
    if num_classes is None:
        num_classes = TRAIN_CLASSES[cfg.protocol['dataset']]
    method = cfg.get('entry', {}).get('method')
    with DefaultScope.overwrite_default_scope('harness'):
        model_cfg = dict(cfg.model, num_classes=int(num_classes))
        model = MODELS.build(without_pretrained(model_cfg) if ckpt is not None else model_cfg)
    if ckpt is not None:
        try:
            load_weights(model, ckpt, method=method, config=str(config_path))
        except CheckpointError as err:
            if ckpt.meta.get('num_classes') is None and 'classif' in str(err):
                raise CheckpointError(
                    f'{err}\n(the checkpoint does not record its number of '
                    'classes; pass num_classes=... if it is not the '
                    "protocol's)"
                ) from None
            raise
    return model.to(device).eval()
