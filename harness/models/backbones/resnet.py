"""torchvision ResNets as ReID trunks: last stride 1, ImageNet weights, demo-scale depth.

Keeping torchvision's module names (``conv1``, ``bn1``, ``layer1.0.conv1`` ...) is deliberate: the
official VI-ReID checkpoints use them, so converters only strip prefixes.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from torchvision.models import resnet as tv_resnet

from harness.checkpoints import read_checkpoint

# The weight set every method's paper starts from: torchvision's original ResNet-50
# (resnet50-19c8e357 / IMAGENET1K_V1, 76.1 % top-1), not the V2 recipe.
PRETRAINED = {
    18: tv_resnet.ResNet18_Weights.IMAGENET1K_V1,
    34: tv_resnet.ResNet34_Weights.IMAGENET1K_V1,
    50: tv_resnet.ResNet50_Weights.IMAGENET1K_V1,
    101: tv_resnet.ResNet101_Weights.IMAGENET1K_V1,
}
ARCHS = {
    18: (tv_resnet.BasicBlock, (2, 2, 2, 2)),
    34: (tv_resnet.BasicBlock, (3, 4, 6, 3)),
    50: (tv_resnet.Bottleneck, (3, 4, 6, 3)),
    101: (tv_resnet.Bottleneck, (3, 4, 23, 3)),
}
STAGES = ('layer1', 'layer2', 'layer3', 'layer4')
TORCHVISION_WIDTH = 64  # channels of torchvision's stem and first stage; later stages double it


class ScaledResNet(tv_resnet.ResNet):
    """torchvision's ResNet with every width scaled by ``base_channels / 64`` (demo-scale trunks).

    Module names and block types stay torchvision's; only channel counts change: stem
    ``base_channels``, stage ``i`` planes ``base_channels * 2**i`` (times the block expansion).
    """

    def __init__(self, block: type[nn.Module], layers: Sequence[int], base_channels: int) -> None:
        # Read by _make_layer, which torchvision's __init__ calls: set before it runs.
        object.__setattr__(self, '_base_channels', int(base_channels))
        super().__init__(block, list(layers))
        self.conv1 = nn.Conv2d(3, base_channels, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base_channels)
        # torchvision's init of its convolutions
        nn.init.kaiming_normal_(self.conv1.weight, mode='fan_out', nonlinearity='relu')

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):  # noqa: ANN001, ANN202
        if planes == TORCHVISION_WIDTH:  # the first stage reads the (scaled) stem's output
            self.inplanes = self._base_channels
        return super()._make_layer(block, planes * self._base_channels // TORCHVISION_WIDTH, blocks,
                                   stride, dilate)


class PretrainedWeightsMissing(FileNotFoundError):
    """ImageNet weights are neither in the torch cache nor downloadable."""


def build_resnet(depth: int = 50, last_stride: int = 1, pretrained: bool | str = True,
                 blocks: Sequence[int] | None = None,
                 base_channels: int = TORCHVISION_WIDTH) -> tv_resnet.ResNet:
    """A torchvision ResNet without ``fc``/``avgpool`` use, optionally with fewer blocks per stage.

    ``pretrained``: ``True`` loads torchvision's IMAGENET1K_V1 weights through its normal cache
    (``$TORCH_HOME/hub/checkpoints``), a string loads that local file, ``False`` keeps random init.
    ``blocks`` (demo configs) overrides the blocks per stage; pretrained weights then load
    non-strictly into the blocks that exist. ``base_channels`` (demo configs) scales every width
    (stem and first stage ``base_channels``, doubling per stage); ImageNet weights exist only for
    torchvision's 64.
    """
    if depth not in ARCHS:
        raise ValueError(f'ResNet depth {depth} is not supported; choose one of {sorted(ARCHS)}')
    block, default_blocks = ARCHS[depth]
    layers = tuple(blocks) if blocks is not None else default_blocks
    if len(layers) != 4 or min(layers) < 1:
        raise ValueError(f'blocks must give 4 positive block counts, got {blocks!r}')
    if isinstance(base_channels, bool) or not isinstance(base_channels, int) or base_channels < 1:
        raise ValueError(f'base_channels must be a positive int, got {base_channels!r}')
    if base_channels != TORCHVISION_WIDTH and pretrained:
        raise ValueError(f'base_channels={base_channels}: ImageNet weights exist only for '
                         f'torchvision\'s width {TORCHVISION_WIDTH}; set pretrained=False for a '
                         f'thinner trunk')
    if base_channels == TORCHVISION_WIDTH:
        net = tv_resnet.ResNet(block, list(layers))
    else:
        net = ScaledResNet(block, layers, base_channels)
    if pretrained:
        state = load_imagenet_state(depth, pretrained if isinstance(pretrained, str) else None)
        own = net.state_dict()
        state = {k: v for k, v in state.items() if k in own and not k.startswith('fc.')}
        missing = [k for k in own if k not in state and not k.startswith('fc.')]
        if blocks is None and missing:
            raise ValueError(f'ImageNet weights for ResNet-{depth} lack {len(missing)} tensors '
                             f'(first: {missing[0]}); is the file a ResNet-{depth} state dict?')
        net.load_state_dict(state, strict=False)
    if last_stride not in (1, 2):
        raise ValueError(f'last_stride must be 1 or 2, got {last_stride}')
    set_last_stride(net, last_stride)
    net.fc = nn.Identity()  # never used: trunks stop at layer4, heads are the method's own
    return net


def set_last_stride(net: tv_resnet.ResNet, stride: int) -> None:
    """Stride of the first block of layer4 (3x3 conv for bottlenecks, and the shortcut)."""
    first = net.layer4[0]
    conv = first.conv2 if isinstance(first, tv_resnet.Bottleneck) else first.conv1
    conv.stride = (stride, stride)
    if first.downsample is not None:
        first.downsample[0].stride = (stride, stride)


def stem(net: tv_resnet.ResNet) -> nn.Sequential:
    """conv1-bn1-relu-maxpool as one module (shares the parameters of ``net``)."""
    return nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)


def load_imagenet_state(depth: int, path: str | None = None) -> dict[str, torch.Tensor]:
    """ImageNet weights as a pure tensor dict, loaded with ``weights_only=True``."""
    weights = PRETRAINED[depth]
    if path is None:
        hub_dir = Path(torch.hub.get_dir()) / 'checkpoints'
        file = hub_dir / os.path.basename(weights.url)
        if not file.is_file():
            try:
                torch.hub.download_url_to_file(weights.url, str(file), progress=False)
            except Exception as err:  # offline clusters are the common case, not a bug
                raise PretrainedWeightsMissing(
                    f'ImageNet ResNet-{depth} weights are not in the torch cache and could not be '
                    f'downloaded ({type(err).__name__}: {err}). Download {weights.url} on a machine '
                    f'with internet and copy it to {file} (or set TORCH_HOME), or point the config at '
                    f'a local file with model.backbone.pretrained="/path/to/file.pth", or set '
                    f'pretrained=False for a from-scratch run.') from err
        path = str(file)
    elif not Path(path).is_file():
        raise PretrainedWeightsMissing(f'pretrained weights file {path} does not exist')
    state = read_checkpoint(path)
    if isinstance(state, dict) and 'state_dict' in state:
        state = state['state_dict']
    return state
