"""CAJ's official network, rebuilt with its attribute names, block placement and forward, and files
in the format its ``train_ext.py`` saves: the converter tests use them.

``ICCV21_CAJ/model.py`` (mangye16/Cross-Modal-Re-ID-baseline@e817a26) is AGW's ``embed_net``: three
ResNet-50s (``resnet.py``: torchvision's Bottleneck layout, last stride 1, no fc) of which the
forward uses the visible stem (``visible_module.visible.{conv1,bn1}``), the thermal stem
(``thermal_module.thermal.*``) and the shared ``base_resnet.base.layer1-4``; non-local blocks
``NL_{s}`` after the last ``non_layers[s]`` blocks of each stage (``non_layers = [0, 2, 3, 0]``);
GeM (p = 3, eps after the mean); ``bottleneck`` (BatchNorm1d) and a bias-free ``classifier``. In
eval mode it returns the L2-normalised pool and BN ("fc") features, ``modal`` 1 visible, 2 thermal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet

from harness.models.backbones.non_local import NonLocalBlock
from harness.models.backbones.resnet import ScaledResNet

FULL = (3, 4, 6, 3)  # ResNet-50
NON_LAYERS = (0, 2, 3, 0)


def _resnet(blocks, base_channels):
    net = (
        ResNet(Bottleneck, list(blocks))
        if base_channels == 64
        else ScaledResNet(Bottleneck, list(blocks), base_channels)
    )
    net.layer4[0].conv2.stride = (1, 1)  # last_conv_stride=1
    net.layer4[0].downsample[0].stride = (1, 1)
    del net.fc  # resnet.py has no fc
    return net


class OfficialEmbedNet(nn.Module):
    """embed_net(class_num, no_local='on', gm_pool='on') with ``blocks`` per stage (ResNet-50:
    3, 4, 6, 3); a stage with fewer blocks than ``non_layers`` asks gets one non-local block per
    block (the demo trunks)."""

    def __init__(self, num_classes: int, blocks=FULL, base_channels: int = 64):
        super().__init__()
        c = base_channels
        self.visible_module = nn.Module()
        self.visible_module.visible = _resnet(blocks, c)
        self.thermal_module = nn.Module()
        self.thermal_module.thermal = _resnet(blocks, c)
        self.base_resnet = nn.Module()
        self.base_resnet.base = _resnet(blocks, c)
        self.nl_idx = {}
        for s, (n_blocks, n_nl, width) in enumerate(zip(blocks, NON_LAYERS, (4, 8, 16, 32)), 1):
            n_nl = min(n_nl, n_blocks)
            setattr(self, f'NL_{s}', nn.ModuleList(NonLocalBlock(width * c) for _ in range(n_nl)))
            self.nl_idx[s] = sorted(n_blocks - (i + 1) for i in range(n_nl))
        self.bottleneck = nn.BatchNorm1d(32 * c)
        self.classifier = nn.Linear(32 * c, num_classes, bias=False)

    def forward(self, x, modal):
        stem = self.visible_module.visible if modal == 1 else self.thermal_module.thermal
        x = stem.maxpool(stem.relu(stem.bn1(stem.conv1(x))))
        for s in range(1, 5):
            blocks_nl = iter(getattr(self, f'NL_{s}'))
            for i, block in enumerate(getattr(self.base_resnet.base, f'layer{s}')):
                x = block(x)
                if i in self.nl_idx[s]:
                    x = next(blocks_nl)(x)
        b, c = x.shape[:2]
        pooled = (torch.mean(x.view(b, c, -1) ** 3.0, dim=-1) + 1e-12) ** (1 / 3.0)
        feat = self.bottleneck(pooled)
        return pooled / pooled.norm(dim=1, keepdim=True), feat / feat.norm(dim=1, keepdim=True)


def official_flip_feature(net: OfficialEmbedNet, x: torch.Tensor, modal: int) -> torch.Tensor:
    """testa.py's "FC" test feature: the mean of the features of ``x`` and its mirror (``fliplr``:
    the width axis reversed), L2-normalised."""
    _, fc = net(x, modal)
    _, fc_flip = net(x.index_select(3, torch.arange(x.size(3) - 1, -1, -1)), modal)
    mean = (fc + fc_flip) / 2
    return mean / mean.norm(p=2, dim=1, keepdim=True)


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


def save_train_ext_checkpoint(net: nn.Module, path: Path, epoch: int = 88) -> Path:
    """What train_ext.py writes as ``*_best.t`` (lines 448-455): the bare state dict (no
    DataParallel) under 'net', with numpy scores beside it (refused by ``weights_only=True``)."""
    torch.save(
        {
            'net': net.state_dict(),
            'cmc': np.zeros(20),
            'mAP': np.float64(0.66),
            'mINP': np.float64(0.53),
            'epoch': epoch,
        },
        path,
    )
    return path


def l2(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, p=2, dim=1)
