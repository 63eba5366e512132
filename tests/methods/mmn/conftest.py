"""Small MMN builders shared by the MMN tests."""
from __future__ import annotations

import pytest
import torch

from methods.mmn.model import MMN

DEMO_BACKBONE = dict(depth=50, last_stride=1, pretrained=False, blocks=(1, 1, 1, 1))


def make_batch(num_ids: int = 3, k: int = 2, size=(64, 32), seed: int = 0):
    """A batch in the harness layout: [visible block | infrared block], identity-major."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.arange(num_ids).repeat_interleave(k) * 2 + 1
    labels = torch.cat([ids, ids])
    modality = torch.cat([torch.zeros(num_ids * k), torch.ones(num_ids * k)]).long()
    images = torch.randn(len(labels), 3, *size, generator=g)
    return images, dict(label=labels, modality=modality, cam=modality * 3, index=torch.arange(len(labels)))


@pytest.fixture
def batch():
    return make_batch


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
