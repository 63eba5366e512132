"""Reusable necks: BNNeck and pooling layers."""
from harness.models.necks.bnneck import BNNeck
from harness.models.necks.gem import GeneralizedMeanPooling

__all__ = ['BNNeck', 'GeneralizedMeanPooling']
