"""Model configs without their ImageNet start, for models whose weights a file gives."""

from __future__ import annotations


def without_pretrained(model: dict) -> dict:
    """The model config with every ``pretrained`` switch off: a checkpoint replaces the weights,
    so ImageNet files need not be on the machine to test or export a trained model."""
    if isinstance(model, dict):
        return {k: False if k == 'pretrained' else without_pretrained(v) for k, v in model.items()}
    return model
