"""BNNeck (Luo et al., "Bag of Tricks", CVPRW 2019): a BatchNorm1d between the metric and the
identity feature."""

from __future__ import annotations

from torch import nn

from harness.registry import MODELS


@MODELS.register_module()
class BNNeck(nn.BatchNorm1d):
    """``BatchNorm1d(dim)`` whose bias stays frozen at zero ("no shift").

    ``weight_std > 0`` draws the scale from ``N(1, weight_std)`` instead of all ones; AGW/MMN use
    0.01 (their ``weights_init_kaiming`` on BatchNorm1d, mangye16/Cross-Modal-Re-ID-baseline
    ``model.py``), MPANet keeps ones (DoubtedSteam/MPANet ``models/baseline.py``). The frozen bias
    is still a parameter, so checkpoints keep the official key layout and parameter counts
    include it.
    """

    def __init__(self, dim: int, weight_std: float = 0.0) -> None:
        super().__init__(dim)
        if weight_std < 0:
            raise ValueError(f'BNNeck weight_std must be >= 0, got {weight_std}')
        if weight_std > 0:
            nn.init.normal_(self.weight, 1.0, weight_std)
        nn.init.zeros_(self.bias)
        self.bias.requires_grad_(False)
