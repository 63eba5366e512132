"""A planned config's model built on the ``meta`` device: its sizes and the ImageNet weights it
loads, in a fraction of a second, without memory for its weights and without reading a file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class ModelShape:
    """``state_bytes``: tensors of the model's state dict (what a checkpoint holds besides the
    optimizer); ``param_bytes``: its trainable parameters (what optimizer state scales with);
    ``feature_dim``: length of one test feature (None when the meta build cannot tell);
    ``pretrained``: ``(depth, file)`` of each ImageNet load (file None: the torch cache)."""

    state_bytes: int
    param_bytes: int
    feature_dim: int | None
    pretrained: tuple[tuple[int, str | None], ...]


def model_key(cfg: Any) -> str:
    """What a model's shape depends on: its config and the input size."""
    return json.dumps([cfg.get('model'), cfg.get('input_size')], sort_keys=True, default=str)


def model_shape(cfg: Any, num_classes: int) -> ModelShape:
    """Build ``cfg.model`` on the meta device (ImageNet loads recorded, not read) and measure it."""
    from mmengine.registry import DefaultScope

    from harness import registry
    from harness.models.backbones.resnet import recording_pretrained
    from harness.plugins import discover
    from protocols.datasets.base import Modality

    discover()
    with (
        DefaultScope.overwrite_default_scope(registry.SCOPE),
        recording_pretrained() as loads,
        torch.device('meta'),
    ):
        model = registry.MODELS.build(dict(cfg.model, num_classes=num_classes))
    state = model.state_dict()
    trained = [p for p in model.parameters() if p.requires_grad]
    dim = None
    try:
        model.eval()
        with torch.no_grad():
            feats = model.extract_feat(
                torch.empty((2, 3, *cfg.input_size), device='meta'), Modality.VISIBLE
            )
        dim = int(feats.reshape(feats.shape[0], -1).shape[1])
    except Exception:  # an operation without a meta kernel: the dimension stays unknown
        dim = None
    return ModelShape(
        state_bytes=sum(t.numel() * t.element_size() for t in state.values()),
        param_bytes=sum(p.numel() * p.element_size() for p in trained),
        feature_dim=dim,
        pretrained=tuple(dict.fromkeys(loads)),
    )
