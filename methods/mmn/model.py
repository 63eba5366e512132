"""MMN: Middle Modality Network (Zhang et al., ACM MM 2021), as the official ZYK100/MMN code runs
it.

Training batch through the backbone: ``[VIS, M_vis, IR, M_ir]`` (4B images), where ``M_*`` are the
middle-modality images the MMG generates from each modality. The visible stem sees
``[VIS; M_vis]``, the infrared stem ``[IR; M_ir]``, layer1-4 are shared (last stride 1). The
layer4 map is cut into horizontal stripes, each average-pooled, with its own BNNeck and bias-free
classifier. Only the modules the official forward uses are built (the official module also
registers two unused ResNet-50 trunks and an unused stem; ``convert.py`` drops them).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from harness.dist import gather_batch
from harness.models.base import VIReIDModel, check_count, id_accuracy
from harness.registry import MODELS
from methods.mmn import losses as _losses  # noqa: F401  (registers DistributionConsistencyLoss)
from methods.mmn.mmg import MiddleModalityGenerator
from protocols.datasets.base import Modality

DEFAULT_BACKBONE = dict(
    type='TwoStreamResNet', depth=50, last_stride=1, pretrained=True, blocks=None
)
# Official ``weights_init_kaiming`` on BatchNorm1d / ``weights_init_classifier`` on the heads.
BNNECK_WEIGHT_STD = 0.01
CLASSIFIER_STD = 0.001


def l2_normalise(x: Tensor) -> Tensor:
    """The official ``Normalize(2)``: divides by the L2 norm without an epsilon."""
    return x / x.pow(2).sum(dim=1, keepdim=True).sqrt()


@MODELS.register_module()
class MMN(VIReIDModel):
    """Middle modality generator + two-stream ResNet + striped BNNeck heads; ID + triplet + DCL."""

    gathers_global_batch = True  # triplet and DCL see the global batch under DDP

    def __init__(
        self,
        num_classes: int,
        num_stripes: int = 4,
        triplet_margin: float = 0.3,
        dcl_delta: float = 0.2,
        dcl_head_dim: int = 256,
        dcl_head_trainable: bool = False,
        dcl_head_seed: int = 0,
        backbone: dict | None = None,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        check_count('num_classes', num_classes, 2, 'training identities')
        check_count('num_stripes', num_stripes, 1)
        backbone_cfg = {**DEFAULT_BACKBONE, **(backbone or {})}
        if backbone_cfg.pop('share_from', 1) != 1:
            raise ValueError(
                'model.backbone.share_from: MMN has modality-specific stems only '
                '(share_from=1); remove the key'
            )
        self.num_classes, self.num_stripes, self.dcl_delta = num_classes, num_stripes, dcl_delta
        self.mmg = MiddleModalityGenerator()
        self.backbone = MODELS.build(dict(backbone_cfg, share_from=1))
        self.feat_dim = self.backbone.out_channels
        # torch.chunk stripes, as the official x.chunk(num_stripes, 2)
        self.stripes = MODELS.build(
            dict(type='HorizontalPartPooling', num_parts=num_stripes, pool='avg', split='chunk')
        )
        # One BNNeck + bias-free classifier per stripe; the official names (bottleneck{k},
        # classifier{k}) map onto these two lists.
        self.bnnecks = nn.ModuleList(
            MODELS.build(dict(type='BNNeck', dim=self.feat_dim, weight_std=BNNECK_WEIGHT_STD))
            for _ in range(num_stripes)
        )
        self.classifiers = nn.ModuleList(
            MODELS.build(
                dict(
                    type='IdentityClassifier',
                    in_channels=self.feat_dim,
                    num_classes=num_classes,
                    std=CLASSIFIER_STD,
                )
            )
            for _ in range(num_stripes)
        )
        self.id_loss = MODELS.build(dict(type='IdentityLoss'))
        self.triplet = MODELS.build(dict(type='BatchHardTripletLoss', margin=triplet_margin))
        self.dcl = MODELS.build(
            dict(
                type='DistributionConsistencyLoss',
                in_dim=self.feat_dim,
                head_dim=dcl_head_dim,
                num_groups=2,
                trainable=dcl_head_trainable,
                seed=dcl_head_seed,
            )
        )

    # --- features -------------------------------------------------------------------------
    def stripe_features(self, fmap: Tensor) -> list[Tensor]:
        """Average-pooled horizontal stripes of the layer4 map, top to bottom (pre-BN)."""
        return list(self.stripes(fmap).unbind(dim=2))

    def _embed(self, images: Tensor, modality: int) -> Tensor:
        fmap = self.backbone.forward_shared(self.backbone.forward_stream(images, modality))
        feats = [bn(f) for bn, f in zip(self.bnnecks, self.stripe_features(fmap))]
        return l2_normalise(torch.cat(feats, dim=1))

    def extract_feat(self, images: Tensor, modality: int) -> Tensor:
        """The official test feature: L2-normalised concatenation of the stripes' BNNeck outputs.

        The official eval forward also runs the M images through the network in the same batch;
        in eval mode every BN uses running statistics, so the original images' rows do not depend
        on them and that branch is skipped (``extract_middle_feat`` gives it).
        """
        return self._embed(images, modality)

    def extract_middle_feat(self, images: Tensor, modality: int) -> Tensor:
        """Test feature of the M images generated from ``images`` (official rows ``[B:]``)."""
        return self._embed(self.mmg(images, modality), modality)

    # --- training -------------------------------------------------------------------------
    def split_modalities(
        self, inputs: Tensor, data_samples: dict[str, Tensor]
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Visible images, infrared images and their shared labels, row i the same identity."""
        labels, modality = data_samples['label'], data_samples['modality']
        vis, ir = modality == Modality.VISIBLE, modality == Modality.INFRARED
        n_vis, n_ir = int(vis.sum()), int(ir.sum())
        if n_vis == 0 or n_vis != n_ir or n_vis + n_ir != len(modality):
            raise ValueError(
                f'MMN trains on batches with as many visible as infrared images, got '
                f'{n_vis} visible and {n_ir} infrared of {len(modality)}; use '
                f"sampler=dict(type='CrossModalityIdentitySampler', ...)"
            )
        if not torch.equal(labels[vis], labels[ir]):
            raise ValueError(
                'MMN pairs the i-th visible with the i-th infrared image of a batch '
                '(DCL and the label layout need the same identity at each position), '
                'but the labels differ; use CrossModalityIdentitySampler, which '
                'aligns the identity order of the two modality blocks'
            )
        return inputs[vis], inputs[ir], labels[vis]

    def loss(self, inputs: Tensor, data_samples: dict[str, Tensor]) -> dict[str, Tensor]:
        x_vis, x_ir, labels = self.split_modalities(inputs, data_samples)
        m_vis, m_ir = self.mmg.forward_pair(x_vis, x_ir)
        stem_vis = self.backbone.forward_stream(torch.cat((x_vis, m_vis)), Modality.VISIBLE)
        stem_ir = self.backbone.forward_stream(torch.cat((x_ir, m_ir)), Modality.INFRARED)
        fmap = self.backbone.forward_shared(torch.cat((stem_vis, stem_ir)))
        pooled = self.stripe_features(fmap)
        logits = [cls(bn(f)) for cls, bn, f in zip(self.classifiers, self.bnnecks, pooled)]
        # The official code trains in fp32: keep the losses out of autocast.
        with torch.autocast(device_type=inputs.device.type, enabled=False):
            return self._losses([f.float() for f in pooled], [z.float() for z in logits], labels)

    def _losses(
        self, pooled: list[Tensor], logits: list[Tensor], labels: Tensor
    ) -> dict[str, Tensor]:
        """Official ``train.py``: stripe-averaged CE on all 4B rows, triplet on the 4 cross-modal
        (original or M) pairings, DCL between the two M blocks."""
        labels_4b = torch.cat((labels, labels, labels, labels))  # [VIS, M_vis, IR, M_ir]
        loss_id = sum(self.id_loss(z, labels_4b) for z in logits) / self.num_stripes
        # Triplet and DCL compare samples: on several GPUs, over the whole batch (harness.dist).
        pooled = [gather_batch(f, blocks=4) for f in pooled]
        labels = gather_batch(labels, blocks=1)
        labels_2b = torch.cat((labels, labels))
        loss_tri, loss_dcl = pooled[0].new_zeros(()), pooled[0].new_zeros(())
        for feats in pooled:
            vis, m_vis, ir, m_ir = feats.chunk(4, dim=0)
            for a, b in ((vis, ir), (vis, m_ir), (m_vis, ir), (m_vis, m_ir)):
                loss_tri = loss_tri + self.triplet(torch.cat((a, b)), labels_2b)[0]
            loss_dcl = loss_dcl + self.dcl(torch.cat((m_vis, m_ir)))
        return dict(
            loss_id=loss_id,
            loss_tri=loss_tri / (4 * self.num_stripes),
            loss_dcl=self.dcl_delta * loss_dcl / self.num_stripes,
            acc_id=id_accuracy(logits[0], labels_4b),
        )
