"""Two-stream ResNet-50 with BoT (relative-position MHSA) layer4, part heads, the config's losses
(default: identity + hetero-center) and an auxiliary (colour-free) modality (see the README).

The losses (``model.losses``, :mod:`harness.models.loss_set`) consume, per part and for the rows
``[V | A | I]`` (modality codes 0, :data:`AUX`, 1): ``logits``, ``emb`` (the raw part embeddings),
``emb_l2`` (each L2-normalised) and ``pool`` (the pooled stripes), all ``[N, ., parts]``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.resnet import Bottleneck

from harness.dist import gather_batch
from harness.models.base import VIReIDModel, id_accuracy
from harness.models.data_preprocessor import IMAGENET_MEAN, IMAGENET_STD
from harness.models.loss_set import LossInputs, LossSet, config_losses
from harness.models.necks.parts import part_windows, split_parts, stack_parts
from harness.registry import MODELS
from protocols.datasets.base import Modality

from .aux_modality import (
    AUX_KINDS,
    AUX_ROUTES,
    XModalityGenerator,
    channel_exchange,
    random_gray,
    to_gray,
)
from .mhsa import POS_ENCODINGS, botify_layer, layer_out_size
from .parts import PartEmbeddingHead  # noqa: F401  (registers it)

AUX = 2  # modality code of auxiliary samples inside the model (never seen by the harness)
LOSS_INPUTS = ('logits', 'emb', 'emb_l2', 'pool')  # all per part: [N, ., parts]
# The default loss set is written down once, in the full config.
CONFIG = Path(__file__).parent / 'configs' / 'tsmhsa_sysu.py'
TEST_FEATS = ('emb', 'pool')
AUX_BLOCK_KINDS = ('gray', 'xmodality', 'caj')  # aux kinds that add an A block to the batch
# conv1, maxpool, layer1, layer2, layer3 (padding keeps ceil(size/stride))
TRUNK_STRIDES = (2, 2, 1, 2, 2)


@MODELS.register_module()
class TwoStreamMHSA(VIReIDModel):
    """Non-shared two-stream network with BoT MHSA in layer4, horizontal parts, the config's losses
    (default ID + HC) and an auxiliary modality. Every keyword is a switch of the README's
    "Options" table; ``losses`` defaults to the set of ``configs/tsmhsa_sysu.py``."""

    subconfig_keys = {'losses': LossSet.SPEC_KEYS}  # (its config's losses section)

    gathers_global_batch = True  # centre and triplet losses see the global batch under DDP

    def __init__(
        self,
        num_classes: int,
        input_size: Sequence[int] = (288, 144),
        share_from: int = 5,
        mhsa_stages: Sequence[int] = (4,),
        mhsa_heads: int = 4,
        mhsa_dim_head: int = 128,
        pos_enc: str = 'rel',
        rel_pos_scaled: bool = True,
        bot_zero_init_last_bn: bool = False,
        num_parts: int = 6,
        part_pool: str = 'avg',
        gem_p: float = 3.0,
        part_head: str = 'tslfn',
        emb_dim: int | None = None,
        dropout: float = 0.0,
        aux: str = 'gray',
        aux_route: str = 'infrared',
        aux_p: float = 0.5,
        test_feat: str = 'emb',
        losses: Mapping[str, dict | None] | None = None,
        backbone: dict | None = None,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self._check_choices(
            pos_enc=(pos_enc, POS_ENCODINGS),
            aux=(aux, AUX_KINDS),
            aux_route=(aux_route, AUX_ROUTES),
            test_feat=(test_feat, TEST_FEATS),
        )
        if len(tuple(input_size)) != 2:
            raise ValueError(f'model.input_size must be (H, W), got {input_size!r}')
        self.input_size = (int(input_size[0]), int(input_size[1]))
        if any(int(s) != 4 for s in mhsa_stages):
            raise ValueError(
                'mhsa_stages may only be [4] (BoT layer4) or [] (plain ResNet), '
                f'got {list(mhsa_stages)}'
            )
        self.num_classes, self.num_parts = int(num_classes), int(num_parts)
        self.aux_p = float(aux_p)
        self.aux, self.aux_route = aux, aux_route
        self.test_feat = test_feat

        self.backbone = MODELS.build(
            dict(type='TwoStreamResNet', share_from=share_from, **(backbone or {}))
        )
        size = self.input_size
        for stride in TRUNK_STRIDES:
            size = (layer_out_size(size[0], stride), layer_out_size(size[1], stride))
        self.layer4_in_size = size
        if mhsa_stages:
            kwargs = dict(
                heads=mhsa_heads,
                dim_head=mhsa_dim_head,
                pos_enc=pos_enc,
                rel_pos_scaled=rel_pos_scaled,
                zero_init_last_bn=bot_zero_init_last_bn,
            )
            for stages in (self.backbone.visible, self.backbone.infrared, self.backbone.shared):
                if 'layer4' in stages:
                    stages['layer4'] = botify_layer(stages['layer4'], size, **kwargs)
        layer4 = self._layer4()
        for block in layer4:
            stride = self._block_stride(block)
            size = (layer_out_size(size[0], stride), layer_out_size(size[1], stride))
        self.feat_size = size
        part_windows(size[0], self.num_parts)  # fails early when the map is too short for the parts
        feat_dim = self.backbone.out_channels

        # A third stream copies the (already BoT-ified) visible-specific stages; its name keeps it
        # in the optimiser's 'backbone' learning-rate group.
        self.backbone_aux_stream = (
            copy.deepcopy(self.backbone.visible)
            if (aux_route == 'third' and aux in AUX_BLOCK_KINDS)
            else None
        )
        self.aux_generator = XModalityGenerator() if aux == 'xmodality' else None

        self.part_pool = MODELS.build(
            dict(
                type='HorizontalPartPooling',
                num_parts=self.num_parts,
                pool=part_pool,
                gem_p=gem_p,
                split='tslfn',
            )
        )
        emb_dim = int(emb_dim) if emb_dim is not None else (512 if part_head == 'tslfn' else 256)
        self.part_heads = MODELS.build(
            dict(
                type='PartHeads',
                num_parts=self.num_parts,
                head=dict(
                    type='PartEmbeddingHead',
                    in_dim=feat_dim,
                    emb_dim=emb_dim,
                    num_classes=self.num_classes,
                    kind=part_head,
                    dropout=dropout,
                ),
            )
        )
        self.losses = LossSet(
            config_losses(CONFIG) if losses is None else losses,
            inputs=LOSS_INPUTS,
            part_inputs=LOSS_INPUTS,
        )

    # ------------------------------------------------------------------ construction helpers
    @staticmethod
    def _check_choices(**choices: tuple[str, Sequence[str]]) -> None:
        for key, (value, allowed) in choices.items():
            if value not in allowed:
                raise ValueError(f'model.{key} must be one of {list(allowed)}, got {value!r}')

    def _layer4(self) -> nn.Sequential:
        return self.backbone.stage('layer4')

    @staticmethod
    def _block_stride(block: nn.Module) -> int:
        if hasattr(block, 'mhsa_branch'):
            pool = getattr(block.mhsa_branch, 'pool', None)
            return 1 if pool is None else int(pool.stride)
        return (block.conv2 if isinstance(block, Bottleneck) else block.conv1).stride[0]

    # ------------------------------------------------------------------ pixels <-> normalised
    def _norm_stats(self, like: Tensor) -> tuple[Tensor, Tensor]:
        mean = getattr(self.data_preprocessor, 'mean', None)
        std = getattr(self.data_preprocessor, 'std', None)
        if mean is None or std is None:
            mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
            std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255
        return mean.to(like), std.to(like)

    def _in_pixel_space(self, x: Tensor, fn) -> Tensor:
        mean, std = self._norm_stats(x)
        return (fn(x * std + mean) - mean) / std

    # ------------------------------------------------------------------ forward pieces
    def _check_size(self, images: Tensor) -> None:
        if tuple(images.shape[-2:]) != self.input_size:
            raise ValueError(
                f'TwoStreamMHSA was built for input_size={self.input_size} '
                '(model.input_size; its MHSA tables and part windows depend on '
                f'it) but got images of {tuple(images.shape[-2:])}; set '
                'model.input_size to the config input_size'
            )

    def _make_aux(self, x_v: Tensor) -> tuple[Tensor, Tensor | None]:
        """(visible images, auxiliary images or None); A is built image-by-image from V."""
        if self.aux == 'gray':
            return x_v, self._in_pixel_space(x_v, to_gray)
        if self.aux == 'caj':
            return x_v, self._in_pixel_space(x_v, channel_exchange)
        if self.aux == 'xmodality':
            return x_v, self.aux_generator(x_v)
        if self.aux == 'random_gray':
            return self._in_pixel_space(x_v, lambda p: random_gray(p, self.aux_p)), None
        return x_v, None

    def _train_maps(self, x_v: Tensor, x_a: Tensor | None, x_i: Tensor) -> Tensor:
        """layer4 maps in the canonical order ``[V | A | I]``."""
        bb, n_v, n_a = self.backbone, len(x_v), 0 if x_a is None else len(x_a)
        vis, ir = Modality.VISIBLE, Modality.INFRARED
        if x_a is None:
            f_v, f_a, f_i = bb.forward_stream(x_v, vis), None, bb.forward_stream(x_i, ir)
        elif self.aux_route == 'infrared':
            f_v = bb.forward_stream(x_v, vis)
            f_a, f_i = bb.forward_stream(torch.cat([x_a, x_i]), ir).split([n_a, len(x_i)])
        elif self.aux_route == 'visible':
            f_v, f_a = bb.forward_stream(torch.cat([x_v, x_a]), vis).split([n_v, n_a])
            f_i = bb.forward_stream(x_i, ir)
        else:
            f_v, f_i = bb.forward_stream(x_v, vis), bb.forward_stream(x_i, ir)
            f_a = x_a
            for stage in self.backbone_aux_stream.values():
                f_a = stage(f_a)
        return bb.forward_shared(torch.cat([f for f in (f_v, f_a, f_i) if f is not None]))

    def _heads(self, maps: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(pooled stripes, part embeddings, part logits), each ``[N, ., parts]``."""
        pooled = self.part_pool(maps)
        embs, logits = self.part_heads(pooled)
        return pooled, embs, logits

    # ------------------------------------------------------------------ the contract
    def _train_rows(
        self, inputs: Tensor, data_samples: dict[str, Tensor]
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, int]:
        """(pooled, embs, logits, labels, modality codes, number of row blocks) in the canonical
        order ``[V | A | I]``."""
        self._check_size(inputs)
        labels, modality = data_samples['label'].long(), data_samples['modality'].long()
        vis, ir = modality == Modality.VISIBLE, modality == Modality.INFRARED
        if not bool(vis.any()) or not bool(ir.any()) or not bool((vis | ir).all()):
            raise ValueError(
                'TwoStreamMHSA trains on batches with both visible (0) and infrared '
                '(1) images and nothing else, got modality codes '
                f'{torch.unique(modality).tolist()}; use the '
                'CrossModalityIdentitySampler'
            )
        x_v, x_a = self._make_aux(inputs[vis])
        y_v, y_i = labels[vis], labels[ir]
        blocks = [
            (y_v, Modality.VISIBLE),
            *([(y_v, AUX)] if x_a is not None else []),
            (y_i, Modality.INFRARED),
        ]
        pooled, embs, logits = self._heads(self._train_maps(x_v, x_a, inputs[ir]))
        return (
            pooled,
            embs,
            logits,
            torch.cat([y for y, _ in blocks]),
            torch.cat([torch.full_like(y, int(m)) for y, m in blocks]),
            len(blocks),
        )

    def forward_train(
        self, inputs: Tensor, data_samples: dict[str, Tensor]
    ) -> dict[str, Tensor | list[Tensor]]:
        """Training forward in the canonical order ``[V | A | I]``: per-part ``logits`` and raw
        ``embs`` (lists of ``[N, .]``), with ``label`` and ``modality`` (0 V, 1 I, 2 A) of the N
        rows."""
        _, embs, logits, labels, modality, _ = self._train_rows(inputs, data_samples)
        return dict(
            logits=list(logits.unbind(dim=2)),
            embs=list(embs.unbind(dim=2)),
            label=labels,
            modality=modality,
        )

    def training_outputs(self, inputs: Tensor, data_samples: dict[str, Tensor]) -> LossInputs:
        """:data:`LOSS_INPUTS` of a training batch, rows ``[V | A | I]``."""
        pooled, embs, logits, labels, modality, blocks = self._train_rows(inputs, data_samples)
        # each part normalised on its own, as TSLFN+HC normalises its embeddings
        normed = [F.normalize(e.float(), dim=1) for e in split_parts(embs)]
        return LossInputs(
            dict(
                logits=logits,
                emb=embs,
                emb_l2=stack_parts(normed),
                pool=pooled,
            ),
            labels=labels,
            modality=modality,
            blocks=blocks,
        )

    def loss(self, inputs: Tensor, data_samples: dict[str, Tensor]) -> dict[str, Tensor]:
        outputs = self.training_outputs(inputs, data_samples)
        # Losses that compare samples see, on several GPUs, the whole batch (harness.dist), rows in
        # the one-process order ([V | A | I] blocks of equal size).
        losses = self.losses(outputs, gather=gather_batch)
        # the parts' summed logits: the identity prediction of the whole model
        logits = outputs.tensors['logits'].float().unbind(dim=2)
        losses['acc_id'] = id_accuracy(sum(logits), outputs.labels)
        return losses

    def extract_feat(self, images: Tensor, modality: int) -> Tensor:
        """Concatenated L2-normalised part embeddings ``[B, p*emb]`` (``test_feat='pool'``: the
        pooled maps)."""
        self._check_size(images)
        maps = self.backbone.forward_shared(self.backbone.forward_stream(images, int(modality)))
        pooled = self.part_pool(maps)
        feats = [pooled[:, :, k] for k in range(self.num_parts)]
        if self.test_feat == 'emb':
            feats = [head.embed(f) for head, f in zip(self.part_heads, feats)]
        return torch.cat([F.normalize(f.float(), dim=1) for f in feats], dim=1)
