"""Small DEEN builders shared by the DEEN tests."""

from __future__ import annotations

import pytest
import torch

from methods.deen.model import DEEN, build_deen

DEMO_BACKBONE = dict(pretrained=False, blocks=(1, 1, 1, 1), base_channels=8)
DEMO_SIZE = (64, 32)  # every MFA map of the demo trunk folds into whole tokens


@pytest.fixture
def tiny_deen():
    """A demo-size DEEN (one bottleneck per stage at an eighth of the width, random init)."""

    def build(num_classes: int = 8, seed: int = 0, config: str = 'deen_sysu', **kw) -> DEEN:
        torch.manual_seed(seed)
        backbone = {**DEMO_BACKBONE, **kw.pop('backbone', {})}
        return build_deen(num_classes, config, backbone=backbone, **kw)

    return build


@pytest.fixture(scope='session')
def full_deen() -> dict[str, DEEN]:
    """The full-size SYSU-MM01 (C = 395) and RegDB (C = 206) models, random init: built once."""
    torch.manual_seed(0)
    return {
        'sysu': build_deen(395, 'deen_sysu', backbone=dict(pretrained=False)),
        'regdb': build_deen(206, 'deen_regdb', backbone=dict(pretrained=False)),
    }


def randomise_bn(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial BN statistics and affine parameters everywhere (the MFA BNs start at zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith('running_var'):
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.75)
            elif name.endswith('running_mean'):
                t.copy_(torch.randn(t.shape, generator=g) * 0.05)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d) and not module.weight.any():
                module.weight.copy_(torch.rand(module.weight.shape, generator=g) * 0.2 + 0.1)
                module.bias.copy_(torch.randn(module.bias.shape, generator=g) * 0.05)
    return model
