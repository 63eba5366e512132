"""MPANet (Wu et al., CVPR 2021) as the official code builds and trains it (see the README).

One shared ResNet-50 (last stride 1) with a modality alleviation module (MAM) after stages 3 and
4; a pattern alignment module (K sigmoid maps, K masked-GAP features + the global GAP feature);
a BNNeck whose output is the test feature; a shared identity classifier, one classifier per
modality, and an EMA ("mean") copy of each modality classifier used as a crossed teacher.

The losses are the config's (``model.losses``, :mod:`harness.models.loss_set`); the model computes
for them :data:`LOSS_INPUTS`, one row per image of the batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from harness.dist import gather_batch
from harness.models.backbones.resnet import block_out_channels
from harness.models.base import VIReIDModel, check_count, id_accuracy
from harness.models.loss_set import LossInputs, LossSet, config_losses
from harness.registry import MODELS
from protocols.datasets.base import Modality

from .losses import ema_update_rate

DEFAULT_BACKBONE = dict(type='ResNet', depth=50, last_stride=1, pretrained=True, blocks=None)
# What the losses may consume (README, "Losses"):
#   pool             pre-BNNeck embedding [B, C*(K+1)] (K pattern features, then the global one)
#   bn               its BNNeck output (the test feature)
#   logits           the shared classifier's
#   modality_logits  each row through its own modality's classifier
#   teacher_logits   each row through the *other* modality's mean (EMA) classifier, no gradient
#   masks            the K sigmoid pattern maps [B, K, H, W]
LOSS_INPUTS = ('pool', 'bn', 'logits', 'modality_logits', 'teacher_logits', 'masks')
# The official loss set is written down once, in the full config.
CONFIG = Path(__file__).parent / 'configs' / 'mpanet_sysu.py'


class ModalityAlleviation(nn.Module):
    """MAM: ``m * x + (1 - m) * IN(x)`` with an SE-style channel gate ``m`` (official
    ``resnet.py``).

    The instance norm has no affine parameters and no running statistics: per-sample statistics
    are used in training and at test time alike.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.gate = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, kernel_size=1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, kernel_size=1, bias=False),
            nn.Sigmoid(),
        )
        self.norm = nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
        for conv in (self.gate[0], self.gate[2]):
            # The official ResNet init loop covers the MAMs too; ImageNet weights never reach them.
            nn.init.kaiming_normal_(conv.weight, mode='fan_out', nonlinearity='relu')

    def forward(self, x: Tensor) -> Tensor:
        m = self.gate(x.mean(dim=(2, 3), keepdim=True))
        return x * m + self.norm(x) * (1 - m)


@MODELS.register_module()
class MPANet(VIReIDModel):
    """Joint Modality and Pattern Alignment Network.

    ``losses``: the loss set (:class:`~harness.models.loss_set.LossSet`); by default that of
    ``configs/mpanet_sysu.py``, with the *effective* weights of the released code (README,
    deviation 2: the modality ID losses at 1.0 because the official code adds
    ``0.5 * (L_v + L_i)`` twice, issue #6).
    """

    subconfig_keys = {'losses': LossSet.SPEC_KEYS}  # (its config's losses section)

    gathers_global_batch = True  # the centre-cluster loss sees the global batch under DDP

    def __init__(
        self,
        num_classes: int,
        num_patterns: int = 6,
        mam_reduction: int = 16,
        ema_base_rate: float = 0.2,
        ema_decay_from: int = 100,
        losses: Mapping[str, dict | None] | None = None,
        backbone: dict | None = None,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        check_count('num_classes', num_classes, 2, 'training identities')
        check_count('num_patterns', num_patterns, 2, 'the overlap loss pairs them')
        self.backbone = MODELS.build({**DEFAULT_BACKBONE, **(backbone or {})})
        trunk_dim = self.backbone.out_channels
        self.mam3 = ModalityAlleviation(block_out_channels(self.backbone.layer3[-1]), mam_reduction)
        self.mam4 = ModalityAlleviation(trunk_dim, mam_reduction)
        self.pattern_conv = nn.Conv2d(trunk_dim, num_patterns, kernel_size=1, bias=True)
        nn.init.zeros_(self.pattern_conv.bias)
        self.num_patterns = num_patterns
        self.feat_dim = trunk_dim * (num_patterns + 1)
        self.neck = MODELS.build(dict(type='BNNeck', dim=self.feat_dim))

        def head() -> nn.Module:  # bias-free, PyTorch's default init (spec: W_s, W_v, W_i)
            return MODELS.build(
                dict(
                    type='IdentityClassifier',
                    in_channels=self.feat_dim,
                    num_classes=num_classes,
                    std=None,
                )
            )

        self.classifier = head()
        self.classifier_visible = head()
        self.classifier_infrared = head()
        # Mean teachers: parameters (counted and checkpointed as in the official model) that no
        # gradient reaches; they start equal to the students (the official code aliases them).
        self.mean_classifier_visible = head()
        self.mean_classifier_infrared = head()
        for teacher, student in (
            (self.mean_classifier_visible, self.classifier_visible),
            (self.mean_classifier_infrared, self.classifier_infrared),
        ):
            teacher.weight.requires_grad_(False)
            teacher.weight.data.copy_(student.weight.data)

        self.losses = LossSet(
            config_losses(CONFIG) if losses is None else losses, inputs=LOSS_INPUTS
        )
        self.ema_base_rate, self.ema_decay_from = ema_base_rate, ema_decay_from
        self.ema_rate = ema_base_rate  # set per epoch by MPANetEMARateHook

    # -- schedule ----------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Set the mean-teacher rate for the coming 1-based ``epoch`` (official EPOCH_STARTED)."""
        self.ema_rate = ema_update_rate(epoch, self.ema_base_rate, self.ema_decay_from)

    @torch.no_grad()
    def update_mean_classifiers(self) -> None:
        """``W_mean <- (1 - r) W_mean + r W`` for both modality classifiers."""
        r = self.ema_rate
        for teacher, student in (
            (self.mean_classifier_visible, self.classifier_visible),
            (self.mean_classifier_infrared, self.classifier_infrared),
        ):
            teacher.weight.mul_(1 - r).add_(student.weight.detach(), alpha=r)

    # -- forward -----------------------------------------------------------------------------
    def trunk(self, images: Tensor) -> Tensor:
        """The feature map F after MAM(2048): ``[B, 2048, H/16, W/16]``."""
        net = self.backbone
        x = net.maxpool(net.relu(net.bn1(net.conv1(images))))
        x = net.layer3(net.layer2(net.layer1(x)))
        x = net.layer4(self.mam3(x))
        return self.mam4(x)

    def embed(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Pre-BNNeck embedding ``[B, C*(K+1)]`` (K pattern features, global last; C = 2048 for
        ResNet-50) and the maps."""
        fmap = self.trunk(images)
        masks = torch.sigmoid(self.pattern_conv(fmap))
        hw = fmap.shape[2] * fmap.shape[3]
        # Masked GAP, not normalised by the mask mass (as official); einsum avoids a B*K*C*H*W
        # tensor.
        patterns = torch.einsum('bkhw,bchw->bkc', masks, fmap).flatten(1) / hw
        return torch.cat([patterns, fmap.mean(dim=(2, 3))], dim=1), masks

    def extract_feat(self, images: Tensor, modality: int) -> Tensor:
        """BNNeck output (the official test feature); the network ignores the modality."""
        feats, _ = self.embed(images)
        return self.neck(feats).float()

    def training_outputs(self, inputs: Tensor, data_samples: dict[str, Tensor]) -> LossInputs:
        """:data:`LOSS_INPUTS` of a training batch. Updates the mean teachers first: the official
        update runs inside the forward, before the teacher pass and the optimiser step."""
        labels = data_samples['label'].to(inputs.device).long()
        modality = data_samples['modality'].to(inputs.device)
        visible = modality == Modality.VISIBLE
        infrared = modality == Modality.INFRARED
        both = bool(visible.any()) and bool(infrared.any())
        if not bool((visible | infrared).all()) or not both:
            raise ValueError(
                'an MPANet training batch needs visible (0) and infrared (1) samples '
                'and no other modality code; got '
                f'data_samples["modality"]={modality.tolist()}'
            )
        feats, masks = self.embed(inputs)
        h = self.neck(feats)
        logits = self.classifier(h).float()
        # Each modality's rows through its own classifier, back in batch order.
        rows = torch.cat([torch.nonzero(visible).flatten(), torch.nonzero(infrared).flatten()])
        order = torch.argsort(rows)
        student = torch.cat(
            [self.classifier_visible(h[visible]), self.classifier_infrared(h[infrared])]
        )
        self.update_mean_classifiers()
        with torch.no_grad():  # crossed teachers
            teacher = torch.cat(
                [
                    self.mean_classifier_infrared(h[visible]),
                    self.mean_classifier_visible(h[infrared]),
                ]
            )
        return LossInputs(
            dict(
                pool=feats,
                bn=h,
                logits=logits,
                modality_logits=student.float()[order],
                teacher_logits=teacher.float()[order],
                masks=masks,
            ),
            labels=labels,
            modality=modality,
        )

    def loss(self, inputs: Tensor, data_samples: dict[str, Tensor]) -> dict[str, Tensor]:
        outputs = self.training_outputs(inputs, data_samples)
        # Losses that compare samples (centre cluster) see, on several GPUs, the whole batch.
        out = self.losses(outputs, gather=gather_batch)
        out['acc_id'] = id_accuracy(outputs.tensors['logits'], outputs.labels)
        return out
