"""``CrossModalityReID``: a VI-ReID model composed of registered parts by config.

    images -> backbone (trunk; two-stream: each modality through its own stem/stages)
           -> [non_local blocks between residual blocks]
           -> neck (global pooling [B, C], or part pooling [B, C, P])  = the "pool" feature
           -> head (BNNeck + identity classifier; per part: PartHeads) = "bn" and "logits"
    training: the config's losses (harness.models.loss_set), each on "pool", "bn" or "logits"
    test:     the "bn" (or "pool") feature, parts concatenated, L2-normalised; optionally also of
              the mirrored image and the two combined (``test_flip``)

Each part is named by ``type=`` and built from the harness registries, as mmpretrain's
``ImageClassifier`` builds its backbone, neck and head; a method that differs from another only
in its parts is a config, as in fast-reid, where AGW is the shared ``Baseline`` with non-local
blocks, GeM pooling and another loss switched on (``configs/Base-AGW.yml``). A method with its
own forward logic writes its own :class:`~harness.models.base.VIReIDModel` instead.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from harness.dist import gather_batch
from harness.models.base import VIReIDModel, id_accuracy
from harness.models.loss_set import LossInputs, LossSet, constructor_arguments
from harness.registry import MODELS
from protocols.datasets.base import Modality

FEATURES = ('pool', 'bn')
LOSS_INPUTS = ('pool', 'bn', 'logits')
# How a test feature combines the image and its horizontal mirror. 'renormalised-mean': CAJ's
# testa.py, normalise(normalise(F(x)) + normalise(F(flip x))) (the mean of the two L2-normalised
# features, normalised again; mangye16/Cross-Modal-Re-ID-baseline@e817a26 ICCV21_CAJ/testa.py
# lines 164-182 and 200-219).
TEST_FLIPS = ('renormalised-mean',)


@MODELS.register_module()
class CrossModalityReID(VIReIDModel):
    """Trunk, optional non-local blocks, neck, head and weighted losses, each given by a config.

    Args:
        num_classes: training identities (injected by the engine; passed on to the head).
        backbone: a trunk: ``forward(x, modality, after_block=None) -> [B, C, H, W]`` and an
            ``out_channels`` attribute (``ResNet``, ``TwoStreamResNet``).
        neck: a global pooling ``[B, C, H, W] -> [B, C]`` (``GeneralizedMeanPooling``,
            ``GlobalAveragePooling``), or a part pooling ``-> [B, C, P]`` with a ``num_parts``
            attribute (``HorizontalPartPooling``).
        head: ``feat -> (bn_feat, logits)``, built with ``in_channels`` and ``num_classes``
            filled in (``BNNeckHead``); behind a part pooling, ``PartHeads`` (``num_parts`` filled
            in too) around such a head.
        losses: ``{name: dict(type=..., input=..., weight=1.0, **loss_args)}``
            (:class:`~harness.models.loss_set.LossSet`); ``input`` is ``'pool'`` (the neck's
            output), ``'bn'`` (the head's normalised feature) or ``'logits'``, all part-level
            behind a part pooling (the losses then say ``parts=``). Logged as ``loss_<name>``
            (already weighted), plus ``acc_<name>`` for a loss that returns ``(value,
            n_correct)``; the head's accuracy is logged as ``acc_id``.
        non_local: optional blocks run between the trunk's residual blocks, built with the
            trunk (``NonLocalStages``).
        test_feature: ``'bn'`` or ``'pool'`` (parts concatenated part by part); L2-normalised
            unless ``normalize_test_feature`` is off.
        test_flip: ``None`` (default): the feature of the image alone. ``'renormalised-mean'``:
            the L2-normalised features of the image and of its horizontal mirror, added and
            L2-normalised again (CAJ's test-time flip); needs ``normalize_test_feature``.
    """

    # Under DDP every loss but the per-sample ones (``per_sample = True``, the identity loss)
    # sees the global batch (harness.dist), so N GPUs train the one-GPU recipe.
    gathers_global_batch = True
    # Keys it takes out of each ``losses`` entry before building the loss (so the config check,
    # harness.engine.config, knows them beside the loss's own arguments).
    subconfig_keys = {'losses': LossSet.SPEC_KEYS}

    def __init__(
        self,
        num_classes: int,
        backbone: dict,
        neck: dict,
        head: dict,
        losses: Mapping[str, dict],
        non_local: dict | None = None,
        test_feature: str = 'bn',
        normalize_test_feature: bool = True,
        test_flip: str | None = None,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if num_classes < 2:
            raise ValueError(
                f'model.num_classes must be >= 2 training identities, got {num_classes}'
            )
        if test_feature not in FEATURES:
            raise ValueError(f'model.test_feature = {test_feature!r}; expected one of {FEATURES}')
        if test_flip is not None and test_flip not in TEST_FLIPS:
            raise ValueError(
                f'model.test_flip = {test_flip!r}; expected None (no flip) or one of {TEST_FLIPS}'
            )
        if test_flip is not None and not normalize_test_feature:
            raise ValueError(
                f'model.test_flip = {test_flip!r} combines L2-normalised features; it needs '
                'normalize_test_feature=True'
            )
        if not losses or not any(spec is not None for spec in losses.values()):
            raise ValueError(
                'model.losses is empty; give at least one, e.g. '
                "losses=dict(id=dict(type='IdentityLoss', input='logits'))"
            )
        self.backbone = MODELS.build(backbone)
        self.non_local = (
            None
            if non_local is None
            else MODELS.build(non_local, default_args=dict(trunk=self.backbone))
        )
        self.neck = MODELS.build(neck)
        self.num_parts = getattr(self.neck, 'num_parts', None)  # a part pooling: [B, C, P]
        self.feat_dim = self.backbone.out_channels
        head_args = dict(in_channels=self.feat_dim, num_classes=num_classes)
        takes_parts = 'num_parts' in (constructor_arguments(head.get('type')) or ())
        if (self.num_parts is not None) != takes_parts:
            raise ValueError(
                f'model.head = {head.get("type")!r} does not fit model.neck = '
                f'{neck.get("type")!r}: a part pooling ([B, C, P]) needs one head per part, '
                "head=dict(type='PartHeads', head=dict(type='BNNeckHead', ...)), and a global "
                'pooling a head without parts'
            )
        if self.num_parts is not None:
            head_args['num_parts'] = self.num_parts
        self.head = MODELS.build(head, default_args=head_args)
        self.losses = LossSet(
            losses,
            inputs=LOSS_INPUTS,
            part_inputs=LOSS_INPUTS if self.num_parts is not None else (),
            where='model.losses',
        )
        # the set's own tables, by loss name (what each loss reads, its weight)
        self.loss_inputs, self.loss_weights = self.losses.inputs, self.losses.weights
        self.test_feature, self.normalize_test_feature = test_feature, normalize_test_feature
        self.test_flip = test_flip

    def forward_features(self, images: Tensor, modality: int | Tensor) -> dict[str, Tensor]:
        """``pool`` ``[B, C]``, ``bn`` ``[B, C]`` and ``logits`` ``[B, num_classes]`` (fp32); each
        with a last part dimension ``P`` behind a part pooling."""
        fmap = self.backbone(images, modality, after_block=self.non_local)
        pooled = self.neck(fmap)
        bn, logits = self.head(pooled)
        return dict(pool=pooled, bn=bn, logits=logits.float())

    def extract_feat(self, images: Tensor, modality: int) -> Tensor:
        feat = self._test_feat(images, modality)
        if self.test_flip is None:
            return feat
        # two passes, as testa.py runs them (eval-mode BatchNorm: no batch interaction)
        return F.normalize(feat + self._test_feat(images.flip(-1), modality), p=2, dim=1)

    def _test_feat(self, images: Tensor, modality: int) -> Tensor:
        feat = self.forward_features(images, modality)[self.test_feature]
        if feat.dim() == 3:  # parts, concatenated part by part
            feat = feat.transpose(1, 2).flatten(1)
        return F.normalize(feat, p=2, dim=1) if self.normalize_test_feature else feat

    def loss(self, inputs: Tensor, data_samples: dict[str, Tensor]) -> dict[str, Tensor]:
        labels, modality = data_samples['label'], data_samples['modality']
        present = set(torch.unique(modality).tolist())
        if not {int(Modality.VISIBLE), int(Modality.INFRARED)} <= present:
            raise ValueError(
                f'{type(self).__name__} trains on batches with visible and infrared '
                f'images; got modalities {sorted(present)} '
                '(use CrossModalityIdentitySampler)'
            )
        outputs = self.forward_features(inputs, modality)
        # [visible | infrared] rows; on several GPUs, every loss but the per-sample ones sees those
        # of the whole batch.
        out = self.losses(LossInputs(outputs, labels, modality), gather=gather_batch)
        logits = outputs['logits']
        out['acc_id'] = id_accuracy(logits.sum(dim=2) if logits.dim() == 3 else logits, labels)
        return out
