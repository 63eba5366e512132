"""MMN's distribution consistency loss (DCL, ZYK100/MMN @ 01d70d5 ``loss.py`` ``DCLoss(num=2)``).

The official DCLoss owns a projection head ``Linear(D, 256, bias=False)`` -> ``BatchNorm1d(256)``
-> ReLU -> ``Linear(256, 256)`` -> ``BatchNorm1d(256)``. ``train.py`` never hands it to the
optimiser and never switches it to eval mode, so the head stays at its random initialisation and
its BNs always normalise with batch statistics (their running statistics are never read). The
faithful head is therefore a fixed function of its seed: it is kept as non-persistent buffers
(moved with the model, absent from checkpoints, not counted as parameters) and rebuilt from the
seed on construction. ``trainable=True`` is the clean option: the head becomes parameters.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.registry import MODELS

BN_EPS = 1e-5


@MODELS.register_module()
class DistributionConsistencyLoss(nn.Module):
    """``DCL(z) = sum_{i<j} mean_n || h(z_i)[n] - h(z_j)[n] ||_2`` over ``num_groups`` equal row
    blocks.

    ``h`` = L2-normalise -> projection head -> L2-normalise. MMN calls it with 2 groups: the
    features of the M images generated from visible images and from infrared images, whose row
    ``n`` shows the same identity (sampler alignment).
    """

    takes_labels = False  # rows are paired by position (sampler alignment), not by label

    HEAD = (
        'fc1_weight',
        'bn1_weight',
        'bn1_bias',
        'fc2_weight',
        'fc2_bias',
        'bn2_weight',
        'bn2_bias',
    )

    def __init__(
        self,
        in_dim: int = 2048,
        head_dim: int = 256,
        num_groups: int = 2,
        trainable: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if num_groups < 2:
            raise ValueError(f'DCL compares at least 2 groups of rows, got num_groups={num_groups}')
        self.num_groups, self.trainable = num_groups, trainable
        for name, value in zip(self.HEAD, self._init_head(in_dim, head_dim, seed)):
            if trainable:
                self.register_parameter(name, nn.Parameter(value))
            else:
                self.register_buffer(name, value, persistent=False)

    @staticmethod
    def _init_head(in_dim: int, head_dim: int, seed: int) -> tuple[Tensor, ...]:
        """PyTorch's default Linear/BN init, drawn from a private generator (not the global RNG).

        ``nn.Linear`` uses kaiming_uniform(a=sqrt(5)) for the weight, i.e. U(+-1/sqrt(fan_in)),
        and U(+-1/sqrt(fan_in)) for the bias; BN starts at weight 1, bias 0.
        """
        gen = torch.Generator().manual_seed(int(seed))

        def uniform(*shape: int, fan_in: int) -> Tensor:
            bound = 1.0 / math.sqrt(fan_in)
            return torch.empty(*shape).uniform_(-bound, bound, generator=gen)

        fc1_weight = uniform(head_dim, in_dim, fan_in=in_dim)
        fc2_weight = uniform(head_dim, head_dim, fan_in=head_dim)
        fc2_bias = uniform(head_dim, fan_in=head_dim)
        ones, zeros = torch.ones(head_dim), torch.zeros(head_dim)
        return fc1_weight, ones, zeros.clone(), fc2_weight, fc2_bias, ones.clone(), zeros.clone()

    def project(self, feats: Tensor) -> Tensor:
        """L2-normalised projection; BNs use batch statistics, as in the never-evaluated official
        head."""
        z = F.normalize(feats, dim=1)
        z = F.linear(z, self.fc1_weight)
        z = F.batch_norm(z, None, None, self.bn1_weight, self.bn1_bias, training=True, eps=BN_EPS)
        z = F.linear(F.relu(z), self.fc2_weight, self.fc2_bias)
        z = F.batch_norm(z, None, None, self.bn2_weight, self.bn2_bias, training=True, eps=BN_EPS)
        return F.normalize(z, dim=1)

    def forward(self, feats: Tensor) -> Tensor:
        if feats.dim() != 2 or feats.shape[0] % self.num_groups:
            raise ValueError(
                f'DCL expects features [N, D] with N divisible by {self.num_groups} '
                f'groups, got shape {tuple(feats.shape)}'
            )
        groups = self.project(feats).chunk(self.num_groups, dim=0)
        loss = feats.new_zeros(())
        for i in range(self.num_groups):
            for j in range(i + 1, self.num_groups):
                loss = loss + (groups[i] - groups[j]).norm(dim=1).mean()
        return loss

    def extra_repr(self) -> str:
        return f'num_groups={self.num_groups}, trainable={self.trainable}'
