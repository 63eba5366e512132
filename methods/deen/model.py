"""DEEN: Diverse Embedding Expansion Network (Zhang & Wang, CVPR 2023), as ZYK100/LLCM@886e27c
``DEEN/model.py`` (``embed_net``), ``train.py`` and ``test.py`` build, train and test it.

    VIS/IR stem -> layer1 -> MFA1 -> layer2 -> MFA2 -> layer3 -> MFA3 -> DEE -> layer4 -> GAP
                                                                (SYSU-MM01 and LLCM, 2048-d)
    VIS/IR stem -> layer1 -> MFA1 -> layer2 -> MFA2 -> DEE -> layer3 -> GAP     (RegDB, 1024-d)

(``last_stage`` 4 or 3; model.py lines 205-262). The stems, the shared ResNet-50 stages, the
pooling and the BNNeck head are the harness's registered parts; the MFA blocks (``mfa.py``) and
the DEE module (``dee.py``) are DEEN's own. DEE stacks the original map and its two branch outputs
along the batch axis, so ``B`` images give ``3B`` rows after it, in training and at test.

Training: the losses of ``losses`` (a config dict, as ``CrossModalityReID`` takes it) on the
``6B`` rows ``[VIS, IR] x (original, branch 1, branch 2)`` (train.py lines 272-294).
Test: the six flip-summed features of test.py (lines 98-163), concatenated
(:meth:`DEEN.extract_feat`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from harness.models.backbones.resnet import STAGES, block_out_channels
from harness.models.base import VIReIDModel, check_count, id_accuracy
from harness.models.loss_set import LossInputs, LossSet
from harness.registry import MODELS
from methods.deen import losses as _losses  # noqa: F401  (registers CPMLoss, OrthogonalLoss)
from methods.deen.dee import DiverseEmbeddingExpansion
from methods.deen.mfa import MFABlock
from protocols.datasets.base import Modality

DEFAULT_BACKBONE = dict(
    type='TwoStreamResNet', share_from=1, depth=50, last_stride=1, pretrained=True
)
DEFAULT_NECK = dict(type='GlobalAveragePooling')
DEFAULT_HEAD = dict(type='BNNeckHead', bnneck_weight_std=0.01, classifier_std=0.001)
LOSS_INPUTS = ('pool', 'bn', 'logits')
CONFIGS = Path(__file__).parent / 'configs'


def l2_normalise(x: Tensor) -> Tensor:
    """The official ``Normalize(2)``, ``x / ||x||``, except that a zero row stays zero instead of
    becoming NaN (every other row is bit-identical): a collapsed network, whose pooled features
    are all zero after the last ReLU, then scores at chance with a warning about zero features
    instead of failing the run."""
    return x / x.pow(2).sum(dim=1, keepdim=True).sqrt().clamp_min(1e-12)


@MODELS.register_module()
class DEEN(VIReIDModel):
    """Two-stream ResNet-50 with MFA blocks and the DEE module; losses given by the config.

    Args:
        num_classes: training identities (injected by the engine).
        losses: ``{name: dict(type=..., input='pool'|'bn'|'logits', weight=1.0, **args)}``, each
            computed on the ``6B`` training rows; logged as ``loss_<name>`` (weighted) and
            ``acc_<name>`` for a loss returning ``(value, n_correct)``.
        last_stage: 4 (SYSU-MM01, LLCM: MFA after layer1-3, DEE before layer4) or 3 (RegDB: MFA
            after layer1-2, DEE before layer3; layer4 is not built).
        backbone, neck, head: registered parts (defaults: ``TwoStreamResNet(share_from=1)``,
            ``GlobalAveragePooling``, ``BNNeckHead`` with AGW's init).
        dee_branches, dee_dropout: the DEE module's branch count and dropout (official 2, 0.01).
        mfa_reduction: PNL's channel reduction (official 2).
        test_flip: add the features of the horizontally mirrored image (test.py).
        test_weights: ``(pool, bn)`` weights of the inner products in the test distance: ``(1,
            1)`` ranks as test.py's ``distmat7``, ``(0.1, 0.9)`` as its ``distmat8``.
    """

    # Triplet and CPM see the global batch under DDP (harness.dist); CE and ORT are per-sample.
    gathers_global_batch = True
    subconfig_keys = {'losses': LossSet.SPEC_KEYS}  # (its config's losses section)

    def __init__(
        self,
        num_classes: int,
        losses: Mapping[str, dict],
        last_stage: int = 4,
        backbone: dict | None = None,
        neck: dict | None = None,
        head: dict | None = None,
        dee_branches: int = 2,
        dee_dropout: float = 0.01,
        mfa_reduction: int = 2,
        test_flip: bool = True,
        test_weights: Sequence[float] = (1.0, 1.0),
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        check_count('num_classes', num_classes, 2, 'training identities')
        if last_stage not in (3, 4):
            raise ValueError(
                f'model.last_stage = {last_stage!r}; DEEN ends at layer4 (4: SYSU-MM01, LLCM) or '
                f'layer3 (3: RegDB)'
            )
        if len(test_weights) != 2 or min(test_weights) < 0:
            raise ValueError(
                f'model.test_weights = {test_weights!r}; expected two weights >= 0 (pool, bn)'
            )
        backbone_cfg = {**DEFAULT_BACKBONE, **(backbone or {})}
        if backbone_cfg.get('type') != 'TwoStreamResNet' or backbone_cfg.get('share_from') != 1:
            raise ValueError(
                'model.backbone: DEEN runs modality-specific stems and shared layer1-4 '
                "(type='TwoStreamResNet', share_from=1)"
            )
        self.backbone = MODELS.build(backbone_cfg)
        self.stages = STAGES[:last_stage]
        for unused in STAGES[last_stage:]:  # RegDB: the official layer4 is never called
            del self.backbone.shared[unused]
        channels = [block_out_channels(self.backbone.stage(s)[-1]) for s in self.stages]
        stem_channels = self.backbone.stage('stem')[1].num_features
        lows = [stem_channels, *channels[:-2]]
        # MFA after every stage before the last one (which follows DEE): official MFA1 (256, 64,
        # flag 0), MFA2 (512, 256, 1), MFA3 (1024, 512, 1); layer1 keeps the stem's size, the
        # others halve it.
        self.mfa = nn.ModuleDict(
            {
                stage: MFABlock(high, low, downsample=i > 0, reduction=mfa_reduction)
                for i, (stage, high, low) in enumerate(zip(self.stages[:-1], channels, lows))
            }
        )
        self.dee = DiverseEmbeddingExpansion(channels[-2], dee_branches, dee_dropout)
        self.neck = MODELS.build(neck or DEFAULT_NECK)
        self.feat_dim = channels[-1]
        self.head = MODELS.build(
            head or DEFAULT_HEAD,
            default_args=dict(in_channels=self.feat_dim, num_classes=num_classes),
        )
        self.losses = LossSet(losses, inputs=LOSS_INPUTS)
        for name, loss in self.losses.items():
            if getattr(loss, 'num_embeddings', self.num_embeddings) != self.num_embeddings:
                raise ValueError(
                    f'model.losses.{name}.num_embeddings = {loss.num_embeddings}, but DEE with '
                    f'{dee_branches} branches gives {self.num_embeddings} embeddings per image'
                )
        self.test_flip = bool(test_flip)
        self.test_weights = tuple(float(w) for w in test_weights)

    @property
    def num_embeddings(self) -> int:
        """Embeddings per image: the original and one per DEE branch (3)."""
        return self.dee.num_embeddings

    # --- forward ------------------------------------------------------------------------------
    def trunk(self, x: Tensor) -> Tensor:
        """Stem output ``[N, C, H, W]`` -> last-stage map of ``num_embeddings * N`` rows."""
        low = x
        for stage in self.stages[:-1]:
            high = self.backbone.stage(stage)(low)
            low = self.mfa[stage](high, low)
        return self.backbone.stage(self.stages[-1])(self.dee(low))

    def heads(self, stem: Tensor) -> dict[str, Tensor]:
        """``pool`` (GAP), ``bn`` (BNNeck) and ``logits`` of every row after DEE."""
        pooled = self.neck(self.trunk(stem))
        bn, logits = self.head(pooled)
        return dict(pool=pooled, bn=bn, logits=logits)

    def embeddings(self, images: Tensor, modality: int) -> tuple[Tensor, Tensor]:
        """The official eval output ``(l2norm(x_pool), l2norm(feat))``: ``num_embeddings * B``
        rows each, ``[original; branch 1; branch 2]`` (model.py lines 271-272)."""
        out = self.heads(self.backbone.forward_stream(images, modality))
        return l2_normalise(out['pool']), l2_normalise(out['bn'])

    def extract_feat(self, images: Tensor, modality: int) -> Tensor:
        """test.py's six features, concatenated: ``[pool, bn]`` of the original embedding, of
        branch 1 and of branch 2, each the sum of the unit vectors of the image and of its mirror
        (not normalised again). Their inner product is test.py's ``distmat7`` (the sum of the six
        inner products); with ``test_weights`` the pool and bn blocks are scaled by the square
        roots of their weights, so the inner product is the weighted sum (``distmat8``)."""
        pool, bn = self.embeddings(images, modality)
        if self.test_flip:
            pool_flip, bn_flip = self.embeddings(images.flip(-1), modality)
            pool, bn = pool + pool_flip, bn + bn_flip
        if self.test_weights != (1.0, 1.0):
            pool, bn = pool * math.sqrt(self.test_weights[0]), bn * math.sqrt(self.test_weights[1])
        blocks = zip(pool.chunk(self.num_embeddings), bn.chunk(self.num_embeddings))
        return torch.cat([f for pair in blocks for f in pair], dim=1)

    # --- training -----------------------------------------------------------------------------
    def split_modalities(self, inputs: Tensor, data_samples: dict[str, Tensor]) -> tuple:
        """(visible images, infrared images, visible labels, infrared labels)."""
        labels, modality = data_samples['label'], data_samples['modality']
        vis, ir = modality == Modality.VISIBLE, modality == Modality.INFRARED
        n_vis, n_ir = int(vis.sum()), int(ir.sum())
        if n_vis == 0 or n_vis != n_ir or n_vis + n_ir != len(modality):
            raise ValueError(
                f'DEEN trains on batches with as many visible as infrared images, got {n_vis} '
                f'visible and {n_ir} infrared of {len(modality)}; use '
                "sampler=dict(type='CrossModalityIdentitySampler', ...)"
            )
        return inputs[vis], inputs[ir], labels[vis], labels[ir]

    def loss(self, inputs: Tensor, data_samples: dict[str, Tensor]) -> dict[str, Tensor]:
        x_vis, x_ir, y_vis, y_ir = self.split_modalities(inputs, data_samples)
        stem = torch.cat(
            (
                self.backbone.forward_stream(x_vis, Modality.VISIBLE),
                self.backbone.forward_stream(x_ir, Modality.INFRARED),
            )
        )
        outputs = self.heads(stem)
        labels = torch.cat((y_vis, y_ir)).repeat(self.num_embeddings)  # train.py line 275
        modality = torch.cat((torch.zeros_like(y_vis), torch.ones_like(y_ir))).repeat(
            self.num_embeddings
        )
        # The official code trains in fp32: keep the losses out of autocast. On several GPUs the
        # losses that compare rows see the whole batch in one process's order: [VIS, IR] per
        # embedding (harness.dist.gather_batch).
        with torch.autocast(device_type=inputs.device.type, enabled=False):
            outputs = {k: v.float() for k, v in outputs.items()}
            out = self.losses(LossInputs(outputs, labels, modality, blocks=2 * self.num_embeddings))
        out['acc_id'] = id_accuracy(outputs['logits'], labels)
        return out


def build_deen(num_classes: int, config: str = 'deen_sysu', **overrides: Any) -> DEEN:
    """The model of ``configs/<config>.py`` with ``overrides`` merged into its ``model`` dict
    (``backbone=dict(pretrained=False)`` keeps the other trunk settings). Used by the converter
    and the tests."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(CONFIGS / f'{config}.py'))
    cfg.merge_from_dict(dict(model=overrides))
    return MODELS.build(dict(cfg.model.to_dict(), num_classes=num_classes))
