"""The per-part embedding/classifier head of the two-stream MHSA model (TSLFN+HC, PCB); the
part pooling in front of it is the harness's ``HorizontalPartPooling``."""

from __future__ import annotations

from torch import Tensor, nn

from harness.models.heads import IdentityClassifier
from harness.registry import MODELS

PART_HEADS = ('tslfn', 'hctri')


@MODELS.register_module()
class PartEmbeddingHead(nn.Module):
    """One part's embedding and classifier, shared by both modalities.

    ``'tslfn'`` (98zyx/...): ``Linear(C->512) + BN1d`` embedding; classifier
    ``LeakyReLU(0.1) -> Dropout -> Linear(512->classes)``. ``'hctri'`` (hijune6/...): the 1x1
    conv + BN2d + ReLU on a pooled 1x1 map, written as its equivalent ``Linear + BN1d + ReLU``
    (256-d); classifier ``Linear(256->classes)``.
    """

    def __init__(
        self, in_dim: int, emb_dim: int, num_classes: int, kind: str = 'tslfn', dropout: float = 0.0
    ) -> None:
        super().__init__()
        if kind not in PART_HEADS:
            raise ValueError(f'part_head must be one of {PART_HEADS}, got {kind!r}')
        self.kind = kind
        linear, bn = nn.Linear(in_dim, emb_dim), nn.BatchNorm1d(emb_dim)
        nn.init.kaiming_normal_(linear.weight, a=0, mode='fan_out')
        nn.init.zeros_(linear.bias)
        nn.init.normal_(bn.weight, 1.0, 0.01)
        nn.init.zeros_(bn.bias)
        self.embed = (
            nn.Sequential(linear, bn)
            if kind == 'tslfn'
            else nn.Sequential(linear, bn, nn.ReLU(inplace=True))
        )
        fc = IdentityClassifier(emb_dim, num_classes, std=0.001, bias=True)
        layers: list[nn.Module] = [nn.LeakyReLU(0.1)] if kind == 'tslfn' else []
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.classifier = nn.Sequential(*layers, fc)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x [B, C]`` -> (embedding ``[B, emb_dim]``, logits ``[B, classes]``)."""
        emb = self.embed(x)
        return emb, self.classifier(emb)
