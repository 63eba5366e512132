"""Non-local block (Wang et al., CVPR 2018) in AGW's "embedded dot-product" form.

Module names (``g.0``, ``theta``, ``phi``, ``W.0``, ``W.1``) match AGW's ``Non_local`` so official
checkpoints map by prefix only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from harness.models.backbones.resnet import STAGES, block_out_channels
from harness.registry import MODELS


class NonLocalBlock(nn.Module):
    """``z = W(softmax-free attention(x)) + x`` with the affinity divided by ``N = H * W``.

    ``inter_channels=None`` reproduces AGW exactly: its code computes
    ``inter_channels = reduc_ratio // reduc_ratio``, i.e. **1** whatever ``reduc_ratio`` is (the
    intended ``in_channels // reduc_ratio`` is a typo upstream, but it is what the reported
    numbers were trained with). Pass ``inter_channels=in_channels // reduc_ratio`` for the
    textbook block. ``W``'s BatchNorm starts at zero so a fresh block is the identity.
    """

    def __init__(
        self, in_channels: int, reduc_ratio: int = 2, inter_channels: int | None = None
    ) -> None:
        super().__init__()
        if reduc_ratio < 1:
            raise ValueError(f'NonLocalBlock reduc_ratio must be >= 1, got {reduc_ratio}')
        self.in_channels = in_channels
        self.inter_channels = (
            reduc_ratio // reduc_ratio if inter_channels is None else int(inter_channels)
        )
        if self.inter_channels < 1:
            raise ValueError(
                f'NonLocalBlock inter_channels must be >= 1, got {self.inter_channels}'
            )
        inter = self.inter_channels
        self.g = nn.Sequential(nn.Conv2d(in_channels, inter, kernel_size=1))
        self.W = nn.Sequential(
            nn.Conv2d(inter, in_channels, kernel_size=1), nn.BatchNorm2d(in_channels)
        )
        nn.init.zeros_(self.W[1].weight)
        nn.init.zeros_(self.W[1].bias)
        self.theta = nn.Conv2d(in_channels, inter, kernel_size=1)
        self.phi = nn.Conv2d(in_channels, inter, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        g_x = self.g(x).flatten(2).transpose(1, 2)  # [B, N, C']
        theta_x = self.theta(x).flatten(2).transpose(1, 2)  # [B, N, C']
        phi_x = self.phi(x).flatten(2)  # [B, C', N]
        affinity = torch.matmul(theta_x, phi_x) / (h * w)  # [B, N, N]
        y = torch.matmul(affinity, g_x).transpose(1, 2).reshape(b, self.inter_channels, h, w)
        return self.W(y) + x

    def extra_repr(self) -> str:
        return f'in_channels={self.in_channels}, inter_channels={self.inter_channels}'


def non_local_positions(num_blocks: int, num_non_local: int) -> list[int]:
    """Block indices a stage's non-local blocks follow: the stage's last ``num_non_local`` blocks.

    AGW writes ``sorted(layers[s] - (i + 1) for i in range(non_layers[s]))`` with the ResNet-50
    block counts; counting from the stage's real block count keeps that placement for shallower
    (demo) trunks, and a stage with fewer blocks than requested gets one block per position.
    """
    n = min(num_non_local, num_blocks)
    return sorted(num_blocks - (i + 1) for i in range(n))


@MODELS.register_module()
class NonLocalStages(nn.ModuleDict):
    """Non-local blocks between a trunk's residual blocks, AGW's ``NL_1`` .. ``NL_4``.

    ``counts[s]`` blocks follow the last ``counts[s]`` residual blocks of ``layer{s+1}`` (AGW:
    ``non_layers = [0, 2, 3, 0]``, ``embed_net`` in mangye16/Cross-Modal-Re-ID-baseline
    ``model.py`` @ e817a26). The blocks live here, not in the trunk, so the trunk's keys stay
    torchvision's; the trunk calls this module after each residual block (``after_block``).
    Keys: ``<stage>.<i>.*`` (``layer2.0.theta.weight`` ...).
    """

    def __init__(
        self,
        trunk: nn.Module,
        counts: Sequence[int] = (0, 2, 3, 0),
        reduc_ratio: int = 2,
        inter_channels: int | None = None,
    ) -> None:
        super().__init__()
        if len(counts) != len(STAGES) or min(counts) < 0:
            raise ValueError(
                f'non_local.counts must give 4 counts >= 0 (layer1..layer4), got {counts!r}'
            )
        self.positions: dict[str, list[int]] = {}
        for stage, count in zip(STAGES, counts):
            blocks = trunk.stage(stage)
            positions = non_local_positions(len(blocks), count)
            if positions:
                channels = block_out_channels(blocks[-1])
                self[stage] = nn.ModuleList(
                    NonLocalBlock(channels, reduc_ratio, inter_channels) for _ in positions
                )
                self.positions[stage] = positions

    def forward(self, stage: str, index: int, x: Tensor) -> Tensor:
        """The output of block ``index`` of ``stage``, through its non-local block if it has one."""
        positions = self.positions.get(stage, ())
        if index not in positions:
            return x
        return self[stage][positions.index(index)](x)
