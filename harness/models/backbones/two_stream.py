"""Two-stream ResNet: modality-specific early stages, shared later stages.

``share_from`` follows AGW/HcTri's ``share_net``: stage indices stem=0, layer1=1 ... layer4=4; the
stem and ``layer1 .. layer{share_from-1}`` have one copy per modality, ``layer{share_from} .. layer4``
are shared (``share_from=5``: two complete networks; ``share_from=1``: AGW's modality-specific stem).
"""
from __future__ import annotations

import copy
from typing import Callable

from torch import Tensor, nn
from torchvision.models.resnet import ResNet

from harness.models.backbones.resnet import STAGES, build_resnet, stem
from protocols.datasets.base import Modality


class TwoStreamResNet(nn.Module):
    """``forward_stream(x, modality)`` runs the specific part, ``forward_shared`` the rest."""

    def __init__(self, share_from: int = 1, depth: int = 50, last_stride: int = 1,
                 pretrained: bool | str = True, blocks: tuple[int, ...] | None = None,
                 base_channels: int = 64, net_factory: Callable[[], ResNet] | None = None) -> None:
        super().__init__()
        if not 1 <= share_from <= 5:
            raise ValueError(f'share_from must be in 1..5 (stem=0, layer1..layer4=1..4), got {share_from}')
        self.share_from = share_from
        make = net_factory or (
            lambda: build_resnet(depth, last_stride, pretrained, blocks, base_channels))
        base = make()
        # Both streams start from the same (ImageNet) weights, as two independently loaded copies do.
        nets = {Modality.VISIBLE: base, Modality.INFRARED: copy.deepcopy(base)}
        names = ['stem', *STAGES]
        self.visible = nn.ModuleDict({n: self._stage(nets[Modality.VISIBLE], n) for n in names[:share_from]})
        self.infrared = nn.ModuleDict({n: self._stage(nets[Modality.INFRARED], n) for n in names[:share_from]})
        self.shared = nn.ModuleDict({n: self._stage(base, n) for n in names[share_from:]})

    @staticmethod
    def _stage(net: ResNet, name: str) -> nn.Module:
        return stem(net) if name == 'stem' else getattr(net, name)

    def stream(self, modality: int) -> nn.ModuleDict:
        return self.visible if int(modality) == Modality.VISIBLE else self.infrared

    def forward_stream(self, x: Tensor, modality: int) -> Tensor:
        for stage in self.stream(modality).values():
            x = stage(x)
        return x

    def forward_shared(self, x: Tensor) -> Tensor:
        for stage in self.shared.values():
            x = stage(x)
        return x

    def forward(self, x: Tensor, modality: int) -> Tensor:
        return self.forward_shared(self.forward_stream(x, modality))
