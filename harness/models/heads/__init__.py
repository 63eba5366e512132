"""Registered heads: the identity classifier, the BNNeck head and per-part heads."""

from harness.models.heads.bnneck_head import BNNeckHead, IdentityClassifier
from harness.models.heads.parts import PartHeads

__all__ = ['BNNeckHead', 'IdentityClassifier', 'PartHeads']
