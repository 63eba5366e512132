"""The official AGW ``embed_net`` (mangye16/Cross-Modal-Re-ID-baseline ``model.py``, --method agw)
rebuilt with its attribute names and forward at demo depth (one block per stage), and files in the
format its ``train.py`` saves: the converter tests and the official re-scoring tests share them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet

from harness.models.backbones.non_local import NonLocalBlock
from harness.models.backbones.resnet import ScaledResNet


def _resnet(base_channels: int = 64):
    # torchvision's ResNet; ScaledResNet is the same network with every width scaled (demo models)
    net = (
        ResNet(Bottleneck, [1, 1, 1, 1])
        if base_channels == 64
        else ScaledResNet(Bottleneck, [1, 1, 1, 1], base_channels)
    )
    net.layer4[0].conv2.stride = (1, 1)  # last_conv_stride=1
    net.layer4[0].downsample[0].stride = (1, 1)
    del net.fc  # the official resnet.py has no fc
    return net


class OfficialLayout(nn.Module):
    """embed_net's attribute names and forward (model.py), with one block per stage."""

    def __init__(self, num_classes, base_channels=64):
        super().__init__()
        c = base_channels
        self.visible_module = nn.Module()
        self.visible_module.visible = _resnet(c)
        self.thermal_module = nn.Module()
        self.thermal_module.thermal = _resnet(c)
        self.base_resnet = nn.Module()
        self.base_resnet.base = _resnet(c)
        self.NL_1 = nn.ModuleList()
        self.NL_2 = nn.ModuleList([NonLocalBlock(8 * c)])
        self.NL_3 = nn.ModuleList([NonLocalBlock(16 * c)])
        self.NL_4 = nn.ModuleList()
        self.bottleneck = nn.BatchNorm1d(32 * c)
        self.classifier = nn.Linear(32 * c, num_classes, bias=False)

    def forward(self, x, modal):
        net = self.visible_module.visible if modal == 1 else self.thermal_module.thermal
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        base = self.base_resnet.base
        x = base.layer1(x)
        x = self.NL_2[0](base.layer2(x))
        x = self.NL_3[0](base.layer3(x))
        x = base.layer4(x)
        b, c = x.shape[:2]
        pooled = (torch.mean(x.view(b, c, -1) ** 3.0, dim=-1) + 1e-12) ** (1 / 3.0)
        feat = self.bottleneck(pooled)
        return pooled / pooled.norm(dim=1, keepdim=True), feat / feat.norm(dim=1, keepdim=True)


def distinctive(net: nn.Module, seed: int = 0) -> nn.Module:
    """``net`` with every tensor made distinctive, BN statistics and non-local outputs included."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if t.dtype.is_floating_point:
                positive = 'running_var' in name or name.endswith('bn3.weight')
                scale = 1.0 if name.endswith('.weight') and t.dim() == 1 else 0.0
                t.copy_(
                    torch.rand_like(t) * 0.2 + 0.9
                    if positive
                    else torch.randn_like(t) * 0.05 + scale
                )
    return net.eval()


def save_train_py_checkpoint(net: nn.Module, path: Path, epoch: int = 80) -> Path:
    """What train.py writes: the DataParallel state under 'net', with numpy scores beside it (a
    pickle that ``weights_only=True`` refuses)."""
    state = {f'module.{k}': v for k, v in net.state_dict().items()}
    torch.save(
        {
            'net': state,
            'cmc': np.zeros(20),
            'mAP': np.float64(0.5),
            'mINP': np.float64(0.3),
            'epoch': epoch,
        },
        path,
    )
    return path
