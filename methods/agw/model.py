"""AGW (Ye et al., TPAMI 2021) cross-modality baseline: the ``--method agw`` model of
mangye16/Cross-Modal-Re-ID-baseline (``model.py`` ``embed_net``, ``train.py``, ``test.py``).

Two-stream ResNet-50 (modality-specific stem, shared layer1-4, last stride 1), non-local blocks
after the last blocks of layer2/layer3, GeM pooling (p = 3), BNNeck, bias-free classifier.
Training: cross-entropy on the BNNeck logits + weighted regularised triplet on the *pre-BN* pooled
feature. Test: the L2-normalised BNNeck feature (AGW's "fc" row, the reported one).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.models.backbones.non_local import NonLocalBlock
from harness.models.backbones.two_stream import TwoStreamResNet
from harness.models.base import VIReIDModel
from harness.models.losses import BatchHardTripletLoss, WeightedRegularizedTriplet
from harness.models.necks import BNNeck, GeneralizedMeanPooling
from harness.registry import MODELS
from protocols.datasets.base import Modality

DEFAULT_BACKBONE = dict(depth=50, last_stride=1, pretrained=True, blocks=None, base_channels=64)
STAGES = ('layer1', 'layer2', 'layer3', 'layer4')
TEST_FEATURES = ('bn', 'pool')
TRIPLETS = ('wrt', 'batch_hard')
POOLS = ('gem', 'avg')


def non_local_positions(num_blocks: int, num_non_local: int) -> list[int]:
    """Block indices a stage's non-local blocks follow: the stage's last ``num_non_local`` blocks.

    AGW writes ``sorted(layers[s] - (i + 1) for i in range(non_layers[s]))`` with the ResNet-50
    block counts; counting from the stage's real block count keeps that placement for shallower
    (demo) trunks, and a stage with fewer blocks than requested gets one block per position.
    """
    n = min(num_non_local, num_blocks)
    return sorted(num_blocks - (i + 1) for i in range(n))


@MODELS.register_module()
class AGW(VIReIDModel):
    """AGW two-stream baseline.

    Args:
        num_classes: training identities (injected by the engine).
        non_local: insert non-local blocks (AGW ``--method agw``; ``False`` with ``pool='avg'``
            and ``triplet='batch_hard'`` is the repo's ``--method base``).
        non_local_layers: non-local blocks per stage (layer1..layer4), AGW ``[0, 2, 3, 0]``.
        pool: ``'gem'`` (p = ``gem_p``) or ``'avg'``.
        triplet: ``'wrt'`` (weighted regularised triplet) or ``'batch_hard'`` (``margin``).
        test_feature: ``'bn'`` (AGW's reported "fc" feature) or ``'pool'``; both L2-normalised.
        backbone: overrides of ``TwoStreamResNet`` arguments (``depth``, ``last_stride``,
            ``pretrained``, ``blocks``, ``base_channels``); the stem is modality-specific
            (``share_from=1``).
    """

    def __init__(self, num_classes: int, non_local: bool = True,
                 non_local_layers: Sequence[int] = (0, 2, 3, 0), pool: str = 'gem', gem_p: float = 3.0,
                 triplet: str = 'wrt', margin: float = 0.3, test_feature: str = 'bn',
                 backbone: dict | None = None, data_preprocessor: dict | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if num_classes < 2:
            raise ValueError(f'AGW needs num_classes >= 2 training identities, got {num_classes}')
        for name, value, choices in (('pool', pool, POOLS), ('triplet', triplet, TRIPLETS),
                                     ('test_feature', test_feature, TEST_FEATURES)):
            if value not in choices:
                raise ValueError(f'model.{name} = {value!r}; expected one of {choices}')
        if len(non_local_layers) != 4 or min(non_local_layers) < 0:
            raise ValueError(f'model.non_local_layers must give 4 counts >= 0 (layer1..layer4), '
                             f'got {non_local_layers!r}')
        cfg = {**DEFAULT_BACKBONE, **(backbone or {})}
        unknown = set(cfg) - set(DEFAULT_BACKBONE)
        if unknown:
            raise ValueError(f'model.backbone has unknown keys {sorted(unknown)}; '
                             f'allowed: {sorted(DEFAULT_BACKBONE)}')
        self.backbone = TwoStreamResNet(share_from=1, **cfg)

        # Non-local blocks live outside the trunk so ResNet keys stay torchvision's.
        self.non_local = nn.ModuleDict()
        self.non_local_after: dict[str, list[int]] = {}
        for stage, count in zip(STAGES, non_local_layers):
            blocks = self.backbone.shared[stage]
            positions = non_local_positions(len(blocks), count) if non_local else []
            if positions:
                channels = _out_channels(blocks[-1])
                self.non_local[stage] = nn.ModuleList(NonLocalBlock(channels) for _ in positions)
                self.non_local_after[stage] = positions

        self.feat_dim = _out_channels(self.backbone.shared['layer4'][-1])
        self.pool = GeneralizedMeanPooling(p=gem_p) if pool == 'gem' else nn.AdaptiveAvgPool2d(1)
        # AGW: weights_init_kaiming on the BatchNorm1d -> weight N(1, 0.01), bias 0 (frozen).
        self.bottleneck = BNNeck(self.feat_dim, weight_std=0.01)
        self.classifier = nn.Linear(self.feat_dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, 0.0, 0.001)
        self.triplet = WeightedRegularizedTriplet() if triplet == 'wrt' else BatchHardTripletLoss(margin)
        self.test_feature = test_feature

    def _shared(self, x: Tensor) -> Tensor:
        for stage in STAGES:
            positions = self.non_local_after.get(stage, ())
            nl = iter(self.non_local[stage]) if positions else iter(())
            for i, block in enumerate(self.backbone.shared[stage]):
                x = block(x)
                if i in positions:
                    x = next(nl)(x)
        return x

    def _pool(self, x: Tensor) -> Tensor:
        # GeM cubes activations: fp16 would overflow above ~40, so pool in fp32 under AMP.
        return self.pool(x.float()).flatten(1)

    def extract_feat(self, images: Tensor, modality: int) -> Tensor:
        pooled = self._pool(self._shared(self.backbone.forward_stream(images, modality)))
        feat = self.bottleneck(pooled) if self.test_feature == 'bn' else pooled
        return F.normalize(feat, p=2, dim=1)

    def loss(self, inputs: Tensor, data_samples: dict[str, Tensor]) -> dict[str, Tensor]:
        labels, modality = data_samples['label'], data_samples['modality']
        # Each stem sees only its own modality (its BatchNorm statistics too), then one shared
        # pass over both, as AGW's forward(x1, x2) does with torch.cat((vis, ir)).
        stems, order = [], []
        for code in (Modality.VISIBLE, Modality.INFRARED):
            idx = torch.nonzero(modality == code).squeeze(1)
            if idx.numel():
                stems.append(self.backbone.forward_stream(inputs[idx], code))
                order.append(idx)
        if len(order) != 2:
            raise ValueError('AGW training batches need visible and infrared images; got modalities '
                             f'{torch.unique(modality).tolist()} (use CrossModalityIdentitySampler)')
        labels = labels[torch.cat(order)]
        pooled = self._pool(self._shared(torch.cat(stems)))
        logits = self.classifier(self.bottleneck(pooled)).float()
        loss_id = F.cross_entropy(logits, labels)
        loss_tri, n_correct = self.triplet(pooled, labels)
        n = labels.numel()
        return dict(loss_id=loss_id, loss_tri=loss_tri,
                    acc_id=(logits.argmax(1) == labels).float().mean().detach(),
                    acc_tri=n_correct.float() / n)


def _out_channels(block: nn.Module) -> int:
    """Output channels of a torchvision residual block (bn3: bottleneck, bn2: basic)."""
    return (block.bn3 if hasattr(block, 'bn3') else block.bn2).num_features
