"""Registered trunks (``ResNet``, ``TwoStreamResNet``) and the non-local trunk plug-in."""

from harness.models.backbones.non_local import NonLocalBlock, NonLocalStages
from harness.models.backbones.resnet import ResNet, block_out_channels, build_resnet
from harness.models.backbones.two_stream import TwoStreamResNet

__all__ = [
    'NonLocalBlock',
    'NonLocalStages',
    'ResNet',
    'TwoStreamResNet',
    'block_out_channels',
    'build_resnet',
]
