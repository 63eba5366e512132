"""MMN: Middle Modality Network (Zhang et al., ACM MM 2021), as the official ZYK100/MMN code runs
it.

Training batch through the backbone: ``[VIS, M_vis, IR, M_ir]`` (4B images), where ``M_*`` are the
middle-modality images the MMG generates from each modality. The visible stem sees
``[VIS; M_vis]``, the infrared stem ``[IR; M_ir]``, layer1-4 are shared (last stride 1). The
layer4 map is cut into horizontal stripes, each average-pooled, with its own BNNeck and bias-free
classifier. Only the modules the official forward uses are built (the official module also
registers two unused ResNet-50 trunks and an unused stem; ``convert.py`` drops them).

The losses are the config's (``model.losses``, :mod:`harness.models.loss_set`); the model computes
for them, per stripe, ``pool`` (pre-BN), ``bn`` and ``logits`` (``[4B, ., stripes]``) of the rows
``[VIS, M_vis, IR, M_ir]``, whose modality codes are 0, :data:`MIDDLE_VISIBLE`, 1,
:data:`MIDDLE_INFRARED`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from harness.dist import gather_batch
from harness.models.base import VIReIDModel, check_count, id_accuracy
from harness.models.loss_set import LossInputs, LossSet, config_losses
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
# Modality codes of the generated rows, for the losses' ``modalities=`` (0 visible, 1 infrared).
MIDDLE_VISIBLE, MIDDLE_INFRARED = 2, 3
LOSS_INPUTS = ('pool', 'bn', 'logits')  # all per stripe: [4B, C, stripes]
# The official loss set is written down once, in the full config.
CONFIG = Path(__file__).parent / 'configs' / 'mmn_sysu.py'


def l2_normalise(x: Tensor) -> Tensor:
    """The official ``Normalize(2)``: divides by the L2 norm without an epsilon."""
    return x / x.pow(2).sum(dim=1, keepdim=True).sqrt()


@MODELS.register_module()
class MMN(VIReIDModel):
    """Middle modality generator + two-stream ResNet + striped BNNeck heads; the config's losses
    (official: ID + triplet + DCL).

    ``losses``: the loss set (:class:`~harness.models.loss_set.LossSet`); by default that of
    ``configs/mmn_sysu.py``, the official one.
    """

    subconfig_keys = {'losses': LossSet.SPEC_KEYS}  # (its config's losses section)

    gathers_global_batch = True  # triplet and DCL see the global batch under DDP

    def __init__(
        self,
        num_classes: int,
        num_stripes: int = 4,
        losses: Mapping[str, dict | None] | None = None,
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
        self.num_classes, self.num_stripes = num_classes, num_stripes
        self.mmg = MiddleModalityGenerator()
        self.backbone = MODELS.build(dict(backbone_cfg, share_from=1))
        self.feat_dim = self.backbone.out_channels
        # torch.chunk stripes, as the official x.chunk(num_stripes, 2)
        self.stripes = MODELS.build(
            dict(type='HorizontalPartPooling', num_parts=num_stripes, pool='avg', split='chunk')
        )
        # One BNNeck + bias-free classifier per stripe; the official names (bottleneck{k},
        # classifier{k}) map onto these two lists.
        self.bnnecks = MODELS.build(
            dict(
                type='PartHeads',
                num_parts=num_stripes,
                head=dict(type='BNNeck', dim=self.feat_dim, weight_std=BNNECK_WEIGHT_STD),
            )
        )
        self.classifiers = MODELS.build(
            dict(
                type='PartHeads',
                num_parts=num_stripes,
                head=dict(
                    type='IdentityClassifier',
                    in_channels=self.feat_dim,
                    num_classes=num_classes,
                    std=CLASSIFIER_STD,
                ),
            )
        )
        self.losses = LossSet(
            config_losses(CONFIG) if losses is None else losses,
            inputs=LOSS_INPUTS,
            part_inputs=LOSS_INPUTS,
            default_args=dict(in_dim=self.feat_dim),  # the DCL head's input width
        )

    # --- features -------------------------------------------------------------------------
    def stripe_features(self, fmap: Tensor) -> list[Tensor]:
        """Average-pooled horizontal stripes of the layer4 map, top to bottom (pre-BN)."""
        return list(self.stripes(fmap).unbind(dim=2))

    def _embed(self, images: Tensor, modality: int) -> Tensor:
        fmap = self.backbone.forward_shared(self.backbone.forward_stream(images, modality))
        feats = self.bnnecks(self.stripes(fmap))  # [B, C, stripes]
        return l2_normalise(feats.transpose(1, 2).flatten(1))

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

    def training_outputs(self, inputs: Tensor, data_samples: dict[str, Tensor]) -> LossInputs:
        """What the losses consume: the stripes' ``pool``, ``bn``, ``logits`` (fp32) of the rows
        ``[VIS, M_vis, IR, M_ir]`` (codes 0, 2, 1, 3), with their labels."""
        x_vis, x_ir, labels = self.split_modalities(inputs, data_samples)
        m_vis, m_ir = self.mmg.forward_pair(x_vis, x_ir)
        stem_vis = self.backbone.forward_stream(torch.cat((x_vis, m_vis)), Modality.VISIBLE)
        stem_ir = self.backbone.forward_stream(torch.cat((x_ir, m_ir)), Modality.INFRARED)
        fmap = self.backbone.forward_shared(torch.cat((stem_vis, stem_ir)))
        pooled = self.stripes(fmap)
        bn = self.bnnecks(pooled)
        logits = self.classifiers(bn)
        codes = (int(Modality.VISIBLE), MIDDLE_VISIBLE, int(Modality.INFRARED), MIDDLE_INFRARED)
        return LossInputs(
            dict(pool=pooled.float(), bn=bn.float(), logits=logits.float()),
            labels=torch.cat((labels, labels, labels, labels)),
            modality=torch.cat([torch.full_like(labels, c) for c in codes]),
            blocks=4,
        )

    def loss(self, inputs: Tensor, data_samples: dict[str, Tensor]) -> dict[str, Tensor]:
        outputs = self.training_outputs(inputs, data_samples)
        # The official code trains in fp32: keep the losses out of autocast. Losses that compare
        # samples see, on several GPUs, the whole batch (harness.dist).
        with torch.autocast(device_type=inputs.device.type, enabled=False):
            out = self.losses(outputs, gather=gather_batch)
        # the first stripe's classifier, as the official train.py reports it
        out['acc_id'] = id_accuracy(outputs.tensors['logits'][:, :, 0], outputs.labels)
        return out
