"""MPANet (Wu et al., CVPR 2021) as the official code builds and trains it (see the README).

One shared ResNet-50 (last stride 1) with a modality alleviation module (MAM) after stages 3 and
4; a pattern alignment module (K sigmoid maps, K masked-GAP features + the global GAP feature);
a BNNeck whose output is the test feature; a shared identity classifier, one classifier per
modality, and an EMA ("mean") copy of each modality classifier used as a crossed teacher.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from harness.dist import gather_batch
from harness.models.backbones.resnet import block_out_channels
from harness.models.base import VIReIDModel, check_count, id_accuracy
from harness.registry import MODELS
from protocols.datasets.base import Modality

from .losses import ema_update_rate

DEFAULT_BACKBONE = dict(type='ResNet', depth=50, last_stride=1, pretrained=True, blocks=None)


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

    Loss weights are the *effective* weights of the released code (README, deviation 2):
    ``modality_id_weight=1.0`` because the official code adds ``0.5 * (L_v + L_i)`` twice
    (issue #6); set 0.5 to get the weight its config states.
    """

    gathers_global_batch = True  # the centre-cluster loss sees the global batch under DDP

    def __init__(
        self,
        num_classes: int,
        num_patterns: int = 6,
        mam_reduction: int = 16,
        pattern_weight: float = 0.5,
        center_cluster_weight: float = 1.0,
        center_margin: float = 0.7,
        id_weight: float = 1.0,
        modality_id_weight: float = 1.0,
        kl_weight: float = 2.5,
        ema_base_rate: float = 0.2,
        ema_decay_from: int = 100,
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

        self.pattern_loss = MODELS.build(dict(type='PatternOverlapLoss'))
        self.center_cluster = MODELS.build(dict(type='CenterClusterLoss', margin=center_margin))
        self.id_loss = MODELS.build(dict(type='IdentityLoss'))
        self.kl_loss = MODELS.build(dict(type='MutualMeanKLLoss'))
        self.loss_weights = dict(
            pattern=pattern_weight,
            center_cluster=center_cluster_weight,
            id=id_weight,
            modality_id=modality_id_weight,
            kl=kl_weight,
        )
        self.center_margin = center_margin
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

    def loss(self, inputs: Tensor, data_samples: dict[str, Tensor]) -> dict[str, Tensor]:
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
        loss_pattern = self.pattern_loss(masks)
        # Centres over the whole batch: on several GPUs, every process's share (harness.dist).
        loss_cc = self.center_cluster(gather_batch(feats), gather_batch(labels))
        h = self.neck(feats)
        logits = self.classifier(h).float()
        loss_id = self.id_loss(logits, labels)
        logits_v = self.classifier_visible(h[visible]).float()
        logits_i = self.classifier_infrared(h[infrared]).float()
        loss_v = self.id_loss(logits_v, labels[visible])
        loss_i = self.id_loss(logits_i, labels[infrared])
        # The official update runs inside the forward, before the teacher pass and the step.
        self.update_mean_classifiers()
        with torch.no_grad():
            teacher_v = self.mean_classifier_infrared(h[visible]).float()  # crossed teachers
            teacher_i = self.mean_classifier_visible(h[infrared]).float()
        loss_kl = self.kl_loss(torch.cat([logits_v, logits_i]), torch.cat([teacher_v, teacher_i]))
        w = self.loss_weights
        return dict(
            loss_pattern=w['pattern'] * loss_pattern,
            loss_center_cluster=w['center_cluster'] * loss_cc,
            loss_id=w['id'] * loss_id,
            loss_id_visible=w['modality_id'] * loss_v,
            loss_id_infrared=w['modality_id'] * loss_i,
            loss_kl=w['kl'] * loss_kl,
            acc_id=id_accuracy(logits, labels),
        )
