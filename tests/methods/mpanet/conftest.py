"""Small MPANet builders shared by the tests."""
from __future__ import annotations

import pytest
import torch

from methods.mpanet.model import MPANet

DEMO_BACKBONE = dict(depth=50, last_stride=1, pretrained=False, blocks=(1, 1, 1, 1))


def tiny_model(num_classes: int = 5, seed: int = 0, **kwargs) -> MPANet:
    torch.manual_seed(seed)
    return MPANet(num_classes=num_classes, backbone=DEMO_BACKBONE, **kwargs)


def harness_batch(num_ids: int = 3, k: int = 2, size=(32, 16), seed: int = 0):
    """A batch in the harness layout: [visible block | infrared block], identity-major."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.arange(num_ids).repeat_interleave(k)
    labels = torch.cat([ids, ids])
    modality = torch.cat([torch.zeros(num_ids * k), torch.ones(num_ids * k)]).long()
    images = torch.randn(len(labels), 3, *size, generator=g)
    return images, dict(label=labels, modality=modality, cam=modality * 3, index=torch.arange(len(labels)))


@pytest.fixture
def model() -> MPANet:
    return tiny_model()


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on the shared 2-core machine two threads ran these tests ~5x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
