"""Registered heads: the identity classifier and the BNNeck head."""

from harness.models.heads.bnneck_head import BNNeckHead, IdentityClassifier

__all__ = ['BNNeckHead', 'IdentityClassifier']
