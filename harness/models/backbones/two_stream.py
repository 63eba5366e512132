"""Two-stream ResNet: modality-specific early stages, shared later stages.

``share_from`` follows AGW/HcTri's ``share_net``: stage indices stem=0, layer1=1 ... layer4=4; the
stem and ``layer1 .. layer{share_from-1}`` have one copy per modality, ``layer{share_from} ..
layer4`` are shared (``share_from=5``: two complete networks; ``share_from=1``: AGW's
modality-specific stem).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torchvision.models.resnet import ResNet

from harness.models.backbones.resnet import (
    STAGES,
    AfterBlock,
    block_out_channels,
    build_resnet,
    run_stage,
    stem,
)
from harness.registry import MODELS
from protocols.datasets.base import Modality


@MODELS.register_module()
class TwoStreamResNet(nn.Module):
    """``forward_stream(x, modality)`` runs the specific part, ``forward_shared`` the rest.

    ``forward(x, modality)`` takes one modality code for a one-modality batch (test batches), or
    a per-row code tensor for a mixed training batch: each row then goes through its own
    modality's stages (whose BatchNorms see only that modality, as in AGW's ``forward(x1, x2)``),
    and the shared stages run once over the whole batch, rows in their input order.
    """

    def __init__(
        self,
        share_from: int = 1,
        depth: int = 50,
        last_stride: int = 1,
        pretrained: bool | str = True,
        blocks: tuple[int, ...] | None = None,
        base_channels: int = 64,
        net_factory: Callable[[], ResNet] | None = None,
    ) -> None:
        super().__init__()
        if not 1 <= share_from <= 5:
            raise ValueError(
                f'share_from must be in 1..5 (stem=0, layer1..layer4=1..4), got {share_from}'
            )
        self.share_from = share_from
        make = net_factory or (
            lambda: build_resnet(depth, last_stride, pretrained, blocks, base_channels)
        )
        base = make()
        # Both streams start from the same (ImageNet) weights, as two independently loaded copies
        # do.
        nets = {Modality.VISIBLE: base, Modality.INFRARED: copy.deepcopy(base)}
        names = ['stem', *STAGES]
        own = names[:share_from]
        self.visible = nn.ModuleDict({n: self._stage(nets[Modality.VISIBLE], n) for n in own})
        self.infrared = nn.ModuleDict({n: self._stage(nets[Modality.INFRARED], n) for n in own})
        self.shared = nn.ModuleDict({n: self._stage(base, n) for n in names[share_from:]})

    @staticmethod
    def _stage(net: ResNet, name: str) -> nn.Module:
        return stem(net) if name == 'stem' else getattr(net, name)

    def stream(self, modality: int) -> nn.ModuleDict:
        return self.visible if int(modality) == Modality.VISIBLE else self.infrared

    def stage(self, name: str) -> nn.Module:
        """The stage ``name`` (``'stem'``, ``'layer1'`` .. ``'layer4'``): the shared one, or the
        visible stream's copy of a modality-specific one."""
        for stages in (self.shared, self.visible):
            if name in stages:
                return stages[name]
        raise KeyError(f'no trunk stage {name!r}; stages are stem, {", ".join(STAGES)}')

    @property
    def out_channels(self) -> int:
        """Channels of the layer4 map."""
        return block_out_channels(self.stage('layer4')[-1])

    def forward_stream(
        self, x: Tensor, modality: int, after_block: AfterBlock | None = None
    ) -> Tensor:
        for name, stage in self.stream(modality).items():
            x = run_stage(name, stage, x, after_block)
        return x

    def forward_streams(
        self, x: Tensor, modality: Tensor, after_block: AfterBlock | None = None
    ) -> Tensor:
        """Each row through its own modality's stream; the output rows keep the input order."""
        outputs, rows = [], []
        for code in (Modality.VISIBLE, Modality.INFRARED):
            idx = torch.nonzero(modality == code).squeeze(1)
            if idx.numel():
                outputs.append(self.forward_stream(x[idx], code, after_block))
                rows.append(idx)
        order = torch.cat(rows)
        if order.numel() != len(x):
            raise ValueError(
                f'modality codes must be {int(Modality.VISIBLE)} (visible) or '
                f'{int(Modality.INFRARED)} (infrared), '
                f'got {torch.unique(modality).tolist()}'
            )
        return torch.cat(outputs)[torch.argsort(order)]

    def forward_shared(self, x: Tensor, after_block: AfterBlock | None = None) -> Tensor:
        for name, stage in self.shared.items():
            x = run_stage(name, stage, x, after_block)
        return x

    def forward(
        self, x: Tensor, modality: int | Tensor, after_block: AfterBlock | None = None
    ) -> Tensor:
        if isinstance(modality, Tensor) and modality.dim() == 1:
            x = self.forward_streams(x, modality, after_block)
        else:
            x = self.forward_stream(x, int(modality), after_block)
        return self.forward_shared(x, after_block)
