"""The official DEEN ``embed_net`` (ZYK100/LLCM@886e27c DEEN/model.py) as the converter tests see
it, written from its key names, shapes and forward, never by importing the official code:

- :func:`official_state`: the full-size state dict (three torchvision-named ResNet-50s without fc,
  MFA1-3 or MFA1-2, the DEE module, bottleneck, classifier) with distinct random values;
- :class:`OfficialLayout`: the same attribute names and forward at demo size (one block per stage,
  scaled widths), to compare features after conversion.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models.resnet import Bottleneck

from harness.models.backbones.resnet import ScaledResNet

PARAMETER_SUFFIXES = ('weight', 'bias')


def _bn(n: int) -> dict[str, tuple[int, ...]]:
    return {
        'weight': (n,),
        'bias': (n,),
        'running_mean': (n,),
        'running_var': (n,),
        'num_batches_tracked': (),
    }


def official_shapes(num_classes: int, dataset: str = 'sysu') -> dict[str, tuple[int, ...]]:
    """Every key of ``embed_net(num_classes, dataset).state_dict()`` with its shape."""
    with torch.device('meta'):
        net = torchvision.models.resnet50(weights=None)
    resnet = {k: tuple(v.shape) for k, v in net.state_dict().items() if not k.startswith('fc.')}
    shapes = {}
    for prefix in ('thermal_module.thermal.', 'visible_module.visible.', 'base_resnet.base.'):
        shapes.update({prefix + k: s for k, s in resnet.items()})
    regdb = dataset == 'regdb'
    mfa = [(256, 64), (512, 256)] + ([] if regdb else [(1024, 512)])
    for k, (high, low) in enumerate(mfa, start=1):
        for part, inter in (('CNL', low), ('PNL', low // 2)):
            p = f'MFA{k}.{part}.'
            shapes[p + 'g.weight'], shapes[p + 'g.bias'] = (inter, low, 1, 1), (inter,)
            shapes[p + 'theta.weight'], shapes[p + 'theta.bias'] = (inter, high, 1, 1), (inter,)
            shapes[p + 'phi.weight'], shapes[p + 'phi.bias'] = (inter, low, 1, 1), (inter,)
            shapes[p + 'W.0.weight'], shapes[p + 'W.0.bias'] = (high, inter, 1, 1), (high,)
            shapes.update({f'{p}W.1.{n}': s for n, s in _bn(high).items()})
    c = 512 if regdb else 1024
    for b in (1, 2):
        for j in (1, 2, 3):
            shapes[f'DEE.FC{b}{j}.weight'] = (c // 4, c, 3, 3)
        shapes[f'DEE.FC{b}.weight'], shapes[f'DEE.FC{b}.bias'] = (c, c // 4, 1, 1), (c,)
    dim = 1024 if regdb else 2048
    shapes.update({f'bottleneck.{n}': s for n, s in _bn(dim).items()})
    shapes['classifier.weight'] = (num_classes, dim)
    return shapes


def official_state(num_classes: int, dataset: str = 'sysu', seed: int = 0) -> dict:
    """:func:`official_shapes` filled with distinct random values (a swapped mapping shows)."""
    g = torch.Generator().manual_seed(seed)
    return {
        k: torch.randint(0, 1000, s, generator=g) if not s else torch.randn(s, generator=g)
        for k, s in official_shapes(num_classes, dataset).items()
    }


def parameter_count(shapes: dict[str, tuple[int, ...]]) -> int:
    """Registered parameters: every tensor but the BatchNorm buffers."""
    return sum(
        int(torch.Size(s).numel()) for k, s in shapes.items() if k.endswith(PARAMETER_SUFFIXES)
    )


# --- demo-size module with the official names and forward --------------------------------------
def _resnet(c: int) -> nn.Module:
    net = ScaledResNet(Bottleneck, [1, 1, 1, 1], c)
    net.layer4[0].conv2.stride = (1, 1)  # last_conv_stride=1
    net.layer4[0].downsample[0].stride = (1, 1)
    del net.fc
    return net


class _Relation(nn.Module):
    """CNL (``pnl=False``) or PNL (``pnl=True``) with the official attribute names."""

    def __init__(self, high: int, low: int, stride: int, pnl: bool) -> None:
        super().__init__()
        inter = low // 2 if pnl else low
        self.pnl, self.low, self.inter = pnl, low, inter
        self.g = nn.Conv2d(low, inter, 1)
        self.theta = nn.Conv2d(high, inter, 1)
        self.phi = nn.Conv2d(low, inter, 1, stride=1 if pnl else stride)
        self.W = nn.Sequential(
            nn.Conv2d(inter, high, 1, stride=1 if pnl else stride), nn.BatchNorm2d(high)
        )

    def forward(self, x_h, x_l):
        n = x_h.shape[0]
        g, th, ph = self.g(x_l), self.theta(x_h), self.phi(x_l)
        if self.pnl:  # every map seen as `low` rows, tokens = columns
            a = torch.bmm(th.view(n, self.low, -1).transpose(1, 2), ph.view(n, self.low, -1))
            y = torch.bmm(a / a.shape[-1], g.view(n, self.low, -1).transpose(1, 2))
            y = y.transpose(1, 2).contiguous().view(n, self.inter, *x_h.shape[2:])
        else:  # channel affinity
            a = torch.bmm(th.view(n, self.low, -1), ph.view(n, self.low, -1).transpose(1, 2))
            y = torch.bmm(a / a.shape[-1], g.view(n, self.low, -1)).view(
                n, self.low, *x_l.shape[2:]
            )
        return self.W(y) + x_h


class _MFA(nn.Module):
    def __init__(self, high: int, low: int, stride: int) -> None:
        super().__init__()
        self.CNL = _Relation(high, low, stride, pnl=False)
        self.PNL = _Relation(high, low, stride, pnl=True)

    def forward(self, x, x0):
        return self.PNL(self.CNL(x, x0), x0)


class _DEE(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        for b in (1, 2):
            for j, d in zip((1, 2, 3), (1, 2, 3)):
                setattr(
                    self, f'FC{b}{j}', nn.Conv2d(c, c // 4, 3, padding=d, dilation=d, bias=False)
                )
            setattr(self, f'FC{b}', nn.Conv2d(c // 4, c, 1))

    def forward(self, x):
        out = [x]
        for b in (1, 2):
            mean = sum(getattr(self, f'FC{b}{j}')(x) for j in (1, 2, 3)) / 3
            out.append(getattr(self, f'FC{b}')(F.relu(mean)))
        return torch.cat(out, 0)


class OfficialLayout(nn.Module):
    """``embed_net`` (SYSU-MM01 network) at demo size: official names, eval forward."""

    def __init__(self, num_classes: int, c: int = 8) -> None:
        super().__init__()
        self.visible_module, self.thermal_module, self.base_resnet = (
            nn.Module(),
            nn.Module(),
            nn.Module(),
        )
        self.visible_module.visible = _resnet(c)
        self.thermal_module.thermal = _resnet(c)
        self.base_resnet.base = _resnet(c)
        self.DEE = _DEE(16 * c)
        self.MFA1, self.MFA2, self.MFA3 = (
            _MFA(4 * c, c, 1),
            _MFA(8 * c, 4 * c, 2),
            _MFA(16 * c, 8 * c, 2),
        )
        self.bottleneck = nn.BatchNorm1d(32 * c)
        self.classifier = nn.Linear(32 * c, num_classes, bias=False)

    def forward(self, x, modal):
        net = self.visible_module.visible if modal == 1 else self.thermal_module.thermal
        low = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        base = self.base_resnet.base
        low = self.MFA1(base.layer1(low), low)
        low = self.MFA2(base.layer2(low), low)
        low = self.MFA3(base.layer3(low), low)
        pooled = base.layer4(self.DEE(low)).mean(dim=(2, 3))
        feat = self.bottleneck(pooled)
        return pooled / pooled.norm(dim=1, keepdim=True), feat / feat.norm(dim=1, keepdim=True)
