"""Small MMN builders shared by the MMN tests."""

from __future__ import annotations

import pytest
import torch

from methods.mmn.model import MMN

DEMO_BACKBONE = dict(depth=50, last_stride=1, pretrained=False, blocks=(1, 1, 1, 1))


@pytest.fixture
def tiny_mmn():
    def build(num_classes: int = 8, seed: int = 0, **kwargs) -> MMN:
        torch.manual_seed(seed)
        return MMN(num_classes=num_classes, backbone=DEMO_BACKBONE, **kwargs)

    return build


@pytest.fixture(scope='session')
def full_mmn_395() -> MMN:
    """The full-size SYSU model (ResNet-50, random init): built once, it takes seconds."""
    torch.manual_seed(0)
    return MMN(num_classes=395, backbone=dict(pretrained=False))
