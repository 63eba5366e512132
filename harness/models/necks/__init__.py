"""Registered necks: global pooling, part pooling and BNNeck."""

from harness.models.necks.bnneck import BNNeck
from harness.models.necks.gem import GeneralizedMeanPooling, GlobalAveragePooling
from harness.models.necks.parts import HorizontalPartPooling, chunk_windows, part_windows

__all__ = [
    'BNNeck',
    'GeneralizedMeanPooling',
    'GlobalAveragePooling',
    'HorizontalPartPooling',
    'chunk_windows',
    'part_windows',
]
