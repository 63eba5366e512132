"""``CrossModalityReID``: a VI-ReID model composed of registered parts by config.

    images -> backbone (trunk; two-stream: each modality through its own stem/stages)
           -> [non_local blocks between residual blocks]
           -> neck (global pooling, [B, C])  = the "pool" feature
           -> head (BNNeck + identity classifier) = the "bn" feature and the "logits"
    training: sum of weighted losses, each on one of "pool", "bn", "logits"
    test:     the "bn" (or "pool") feature, L2-normalised; optionally also of the mirrored image
              and the two combined (``test_flip``)

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
from torch import Tensor, nn

from harness.dist import gather_batch
from harness.models.base import VIReIDModel, id_accuracy
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
            ``GlobalAveragePooling``).
        head: ``feat -> (bn_feat, logits)``, built with ``in_channels`` and ``num_classes``
            filled in (``BNNeckHead``).
        losses: ``{name: dict(type=..., input=..., weight=1.0, **loss_args)}``; ``input`` is
            ``'pool'`` (the neck's output), ``'bn'`` (the head's normalised feature) or
            ``'logits'``. Logged as ``loss_<name>`` (already weighted), plus ``acc_<name>`` for a
            loss that returns ``(value, n_correct)``; the head's accuracy is logged as ``acc_id``.
        non_local: optional blocks run between the trunk's residual blocks, built with the
            trunk (``NonLocalStages``).
        test_feature: ``'bn'`` or ``'pool'``; L2-normalised unless ``normalize_test_feature``
            is off.
        test_flip: ``None`` (default): the feature of the image alone. ``'renormalised-mean'``:
            the L2-normalised features of the image and of its horizontal mirror, added and
            L2-normalised again (CAJ's test-time flip); needs ``normalize_test_feature``.
    """

    # Under DDP every loss but the per-sample ones (``per_sample = True``, the identity loss)
    # sees the global batch (harness.dist), so N GPUs train the one-GPU recipe.
    gathers_global_batch = True

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
        if not losses:
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
        self.feat_dim = self.backbone.out_channels
        self.head = MODELS.build(
            head, default_args=dict(in_channels=self.feat_dim, num_classes=num_classes)
        )
        self.losses = nn.ModuleDict()
        self.loss_inputs: dict[str, str] = {}
        self.loss_weights: dict[str, float] = {}
        for name, spec in losses.items():
            spec = dict(spec)
            where, weight = spec.pop('input', None), float(spec.pop('weight', 1.0))
            if where not in LOSS_INPUTS:
                raise ValueError(
                    f'model.losses.{name}.input = {where!r}; expected one of '
                    f'{LOSS_INPUTS} (the tensor the loss is computed on)'
                )
            self.losses[name] = MODELS.build(spec)
            self.loss_inputs[name], self.loss_weights[name] = where, weight
        self.test_feature, self.normalize_test_feature = test_feature, normalize_test_feature
        self.test_flip = test_flip

    def forward_features(self, images: Tensor, modality: int | Tensor) -> dict[str, Tensor]:
        """``pool`` ``[B, C]``, ``bn`` ``[B, C]`` and ``logits`` ``[B, num_classes]`` (fp32)."""
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
        out: dict[str, Tensor] = {}
        # [visible | infrared] rows; on several GPUs, those of the whole batch.
        global_labels, global_modality = gather_batch(labels), gather_batch(modality)
        for name, loss in self.losses.items():
            x, y, mods = outputs[self.loss_inputs[name]], labels, modality
            if not getattr(loss, 'per_sample', False):
                x, y, mods = gather_batch(x), global_labels, global_modality
            extra = dict(modality=mods) if getattr(loss, 'takes_modality', False) else {}
            value = loss(x, y, **extra)
            if isinstance(value, tuple):
                value, n_correct = value
                out[f'acc_{name}'] = n_correct.float() / y.numel()
            out[f'loss_{name}'] = self.loss_weights[name] * value
        out['acc_id'] = id_accuracy(outputs['logits'], labels)
        return out
