"""``build_resnet(base_channels=...)``: thinner trunks for CPU demos, torchvision's by default."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import resnet as tv_resnet

from harness.models.backbones.resnet import build_resnet
from harness.models.backbones.two_stream import TwoStreamResNet


def _trunk(net: tv_resnet.ResNet, x: torch.Tensor) -> torch.Tensor:
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    return net.layer4(net.layer3(net.layer2(net.layer1(x))))


def test_default_width_is_torchvision_bit_for_bit() -> None:
    torch.manual_seed(0)
    ours = build_resnet(50, last_stride=2, pretrained=False)
    torch.manual_seed(0)
    theirs = tv_resnet.resnet50()
    assert type(ours) is tv_resnet.ResNet
    a, b = ours.state_dict(), theirs.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if not k.startswith('fc.'))


@pytest.mark.parametrize('depth,expansion', [(18, 1), (50, 4)])
def test_scaled_widths_keep_names_and_double_per_stage(depth: int, expansion: int) -> None:
    net = build_resnet(
        depth, last_stride=1, pretrained=False, blocks=(1, 1, 1, 1), base_channels=16
    )
    names = {k for k in net.state_dict() if not k.startswith('fc.')}
    full = build_resnet(depth, last_stride=1, pretrained=False, blocks=(1, 1, 1, 1))
    assert names == {k for k in full.state_dict() if not k.startswith('fc.')}
    assert net.conv1.out_channels == 16 and net.bn1.num_features == 16
    for i, stage in enumerate((net.layer1, net.layer2, net.layer3, net.layer4)):
        last_bn = stage[-1].bn3 if expansion == 4 else stage[-1].bn2
        assert last_bn.num_features == 16 * 2**i * expansion
    out = _trunk(net.eval(), torch.randn(2, 3, 64, 32))
    assert out.shape == (2, 128 * expansion, 4, 2)  # last stride 1: 1/16 of the input
    assert sum(p.numel() for p in net.parameters()) < sum(p.numel() for p in full.parameters()) / 10


def test_two_stream_passes_width_and_imagenet_needs_full_width() -> None:
    two = TwoStreamResNet(
        share_from=1, depth=50, pretrained=False, blocks=(1, 1, 1, 1), base_channels=8
    )
    assert two.visible['stem'][0].out_channels == 8
    assert two.forward(torch.randn(1, 3, 32, 16), 1).shape[1] == 8 * 8 * 4
    with pytest.raises(ValueError, match='pretrained=False'):
        build_resnet(50, pretrained=True, base_channels=32)
    with pytest.raises(ValueError, match='base_channels must be a positive int'):
        build_resnet(50, pretrained=False, base_channels=0)
