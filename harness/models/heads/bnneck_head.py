"""The identity classifier and the BNNeck head shared by AGW, MMN and MPANet."""

from __future__ import annotations

from torch import Tensor, nn

from harness.models.necks.bnneck import BNNeck
from harness.registry import MODELS


@MODELS.register_module()
class IdentityClassifier(nn.Linear):
    """Linear identity classifier, bias-free by default, weights drawn from ``N(0, std)``.

    ``std=0.001`` is ``weights_init_classifier`` of AGW and MMN (mangye16/Cross-Modal-Re-ID-baseline
    and ZYK100/MMN ``model.py``) and of TSLFN's ``ClassBlock`` (with ``bias=True``, bias 0);
    ``std=None`` keeps PyTorch's default init, as MPANet's classifiers (DoubtedSteam/MPANet
    ``models/baseline.py``). Keys are those of ``nn.Linear`` (``weight``, ``bias``).
    """

    def __init__(
        self, in_channels: int, num_classes: int, std: float | None = 0.001, bias: bool = False
    ) -> None:
        super().__init__(in_channels, num_classes, bias=bias)
        if std is not None:
            if std <= 0:
                raise ValueError(f'classifier std must be > 0 (or None: PyTorch init), got {std}')
            nn.init.normal_(self.weight, 0.0, std)
            if self.bias is not None:
                nn.init.zeros_(self.bias)


@MODELS.register_module()
class BNNeckHead(nn.Module):
    """BNNeck then the identity classifier: ``feat -> (bn_feat, logits)``.

    The head of AGW's ``embed_net`` (``bottleneck`` + ``classifier``; mangye16/Cross-Modal-Re-ID-
    baseline ``model.py`` @ e817a26), of each MMN stripe and of MPANet. ``in_channels`` and
    ``num_classes`` are filled in by the model that builds it.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        bnneck_weight_std: float = 0.0,
        classifier_std: float | None = 0.001,
    ) -> None:
        super().__init__()
        self.bottleneck = BNNeck(in_channels, weight_std=bnneck_weight_std)
        self.classifier = IdentityClassifier(in_channels, num_classes, std=classifier_std)

    def forward(self, feats: Tensor) -> tuple[Tensor, Tensor]:
        bn_feats = self.bottleneck(feats)
        return bn_feats, self.classifier(bn_feats)
