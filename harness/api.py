"""Python entry points for using trained models outside the CLI."""
from __future__ import annotations

from pathlib import Path

import torch
from mmengine.registry import DefaultScope

from harness.engine.config import load_config
from harness.engine.run import without_pretrained
from harness.models.base import VIReIDModel
from harness.plugins import discover, resolve_config
from harness.registry import MODELS


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(state_dict, meta) of a harness checkpoint or of a plain/converted state dict.

    Loaded with ``weights_only=True``: harness checkpoints are written to allow it, and an
    untrusted file cannot run code.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'checkpoint {path} does not exist')
    try:
        obj = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:
        raise ValueError(f'{path} is not a weights-only checkpoint ({err}). Checkpoints written by '
                         'vireid train and vireid convert load safely; convert official checkpoints '
                         'with `vireid convert METHOD SRC DST` first.') from err
    if isinstance(obj, dict) and 'state_dict' in obj:
        return obj['state_dict'], dict(obj.get('meta') or {})
    if isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj, {}
    raise ValueError(f'{path} holds neither a harness checkpoint nor a state dict of tensors')


def load_model(config_path: str | Path, checkpoint: str | Path | None = None, device: str = 'cpu',
               num_classes: int | None = None) -> VIReIDModel:
    """The model of ``config_path`` in eval mode on ``device``, weights from ``checkpoint``.

    ``config_path`` is a config file or the name of an installed plugin's config (``agw_sysu``).

    The number of training identities comes from ``num_classes``, else the checkpoint, else the
    config's dataset (``data_root``).
    """
    discover()
    cfg = load_config(resolve_config(config_path))
    state, meta = read_checkpoint(checkpoint) if checkpoint is not None else (None, {})
    if num_classes is None:
        num_classes = meta.get('num_classes')
    if num_classes is None:
        from harness.data.datasets import train_set
        try:
            num_classes = train_set(cfg.protocol['dataset'], cfg.data_root, cfg.protocol).num_classes
        except (FileNotFoundError, ValueError) as err:
            raise ValueError(f'cannot tell the number of classes: pass num_classes=..., or a harness '
                             f'checkpoint, or a config whose data_root exists ({err})') from err
    with DefaultScope.overwrite_default_scope('harness'):
        model_cfg = dict(cfg.model, num_classes=num_classes)
        model = MODELS.build(without_pretrained(model_cfg) if state is not None else model_cfg)
    if state is not None:
        model.load_state_dict(state, strict=True)
    return model.to(device).eval()
