"""Small MPANet builders shared by the tests."""

from __future__ import annotations

import pytest
import torch

from methods.mpanet.model import MPANet

DEMO_BACKBONE = dict(depth=50, last_stride=1, pretrained=False, blocks=(1, 1, 1, 1))


def tiny_model(num_classes: int = 5, seed: int = 0, **kwargs) -> MPANet:
    torch.manual_seed(seed)
    return MPANet(num_classes=num_classes, backbone=DEMO_BACKBONE, **kwargs)


@pytest.fixture
def model() -> MPANet:
    return tiny_model()
