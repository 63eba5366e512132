"""torchvision ResNets as ReID trunks: last stride 1, ImageNet weights, demo-scale depth.

Keeping torchvision's module names (``conv1``, ``bn1``, ``layer1.0.conv1`` ...) is deliberate: the
official VI-ReID checkpoints use them, so converters only strip prefixes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models import resnet as tv_resnet

from harness.checkpoints import read_checkpoint
from harness.registry import MODELS

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
        return super()._make_layer(
            block, planes * self._base_channels // TORCHVISION_WIDTH, blocks, stride, dilate
        )


class PretrainedWeightsMissing(FileNotFoundError):
    """ImageNet weights are neither in the torch cache nor downloadable."""


# (depth, file or None for the torch cache) of each ImageNet load a build skipped, while
# :func:`recording_pretrained` is active.
_RECORDED: ContextVar[list[tuple[int, str | None]] | None] = ContextVar('recorded', default=None)


@contextmanager
def recording_pretrained() -> Iterator[list[tuple[int, str | None]]]:
    """Within it, a trunk that would load ImageNet weights records ``(depth, file)`` instead (file
    None: torchvision's weights through the torch cache) and keeps its random init: what the
    preflight asks of a config, building its model on the ``meta`` device, without reading a file.
    """
    recorded: list[tuple[int, str | None]] = []
    token = _RECORDED.set(recorded)
    try:
        yield recorded
    finally:
        _RECORDED.reset(token)


def imagenet_file(depth: int) -> tuple[str, Path]:
    """(download URL, path in the torch cache) of the ImageNet weights of a ResNet-``depth``:
    ``$TORCH_HOME/hub/checkpoints/<file name of the URL>``, where torch.hub keeps them."""
    url = PRETRAINED[depth].url
    return url, Path(torch.hub.get_dir()) / 'checkpoints' / os.path.basename(url)


def build_resnet(
    depth: int = 50,
    last_stride: int = 1,
    pretrained: bool | str = True,
    blocks: Sequence[int] | None = None,
    base_channels: int = TORCHVISION_WIDTH,
) -> tv_resnet.ResNet:
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
        raise ValueError(
            f'base_channels={base_channels}: ImageNet weights exist only for '
            f"torchvision's width {TORCHVISION_WIDTH}; set pretrained=False for a "
            f'thinner trunk'
        )
    if base_channels == TORCHVISION_WIDTH:
        net = tv_resnet.ResNet(block, list(layers))
    else:
        net = ScaledResNet(block, layers, base_channels)
    recorded = _RECORDED.get()
    if pretrained and recorded is not None:
        recorded.append((depth, pretrained if isinstance(pretrained, str) else None))
    elif pretrained:
        state = load_imagenet_state(depth, pretrained if isinstance(pretrained, str) else None)
        own = net.state_dict()
        state = {k: v for k, v in state.items() if k in own and not k.startswith('fc.')}
        missing = [k for k in own if k not in state and not k.startswith('fc.')]
        if blocks is None and missing:
            raise ValueError(
                f'ImageNet weights for ResNet-{depth} lack {len(missing)} tensors '
                f'(first: {missing[0]}); is the file a ResNet-{depth} state dict?'
            )
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
    if path is None:
        url, file = imagenet_file(depth)
        if not file.is_file():
            try:
                torch.hub.download_url_to_file(url, str(file), progress=False)
            except Exception as err:  # offline clusters are the common case, not a bug
                raise PretrainedWeightsMissing(
                    f'ImageNet ResNet-{depth} weights are not in the torch cache and could not be '
                    f'downloaded ({type(err).__name__}: {err}). Download {url} on a '
                    f'machine with internet and copy it to {file} (or set TORCH_HOME), or point '
                    'the config at a local file with '
                    'model.backbone.pretrained="/path/to/file.pth", '
                    'or set pretrained=False for a from-scratch run.'
                ) from err
        path = str(file)
    elif not Path(path).is_file():
        raise PretrainedWeightsMissing(f'pretrained weights file {path} does not exist')
    state = read_checkpoint(path)
    if isinstance(state, dict) and 'state_dict' in state:
        state = state['state_dict']
    return state


# Called after every residual block of a stage as ``after_block(stage, index, output)``; a trunk
# plug-in (non-local blocks) uses it to act between blocks without changing the trunk's keys.
AfterBlock = Callable[[str, int, Tensor], Tensor]


def block_out_channels(block: nn.Module) -> int:
    """Output channels of a residual block: its last BatchNorm (bn3 of a bottleneck, bn2 of a basic
    block; a BoT bottleneck keeps bn3)."""
    return (block.bn3 if hasattr(block, 'bn3') else block.bn2).num_features


def run_stage(name: str, stage: nn.Module, x: Tensor, after_block: AfterBlock | None) -> Tensor:
    """One trunk stage; ``after_block(name, i, y)`` sees the output of each residual block."""
    if after_block is None or name == 'stem':
        return stage(x)
    for i, block in enumerate(stage):
        x = after_block(name, i, block(x))
    return x


@MODELS.register_module()
class ResNet(nn.Module):
    """Single-stream ReID trunk: a torchvision ResNet's stem and layer1-4 (:func:`build_resnet`).

    The modules keep torchvision's names (``conv1``, ``bn1``, ``layer1.0.conv1`` ...) at the top
    level, so a state dict is a torchvision one without ``fc``. ``forward`` returns the layer4 map;
    it takes (and ignores) a modality so that it is interchangeable with :class:`TwoStreamResNet`.
    """

    def __init__(
        self,
        depth: int = 50,
        last_stride: int = 1,
        pretrained: bool | str = True,
        blocks: Sequence[int] | None = None,
        base_channels: int = TORCHVISION_WIDTH,
    ) -> None:
        super().__init__()
        net = build_resnet(depth, last_stride, pretrained, blocks, base_channels)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = (getattr(net, s) for s in STAGES)

    @property
    def out_channels(self) -> int:
        """Channels of the layer4 map."""
        return block_out_channels(self.layer4[-1])

    def stage(self, name: str) -> nn.Module:
        """``'stem'`` or ``'layer1'`` .. ``'layer4'``."""
        if name == 'stem':
            return nn.Sequential(self.conv1, self.bn1, self.relu, self.maxpool)
        if name not in STAGES:
            raise KeyError(f'no trunk stage {name!r}; stages are stem, {", ".join(STAGES)}')
        return getattr(self, name)

    def forward(
        self, x: Tensor, modality: int | Tensor | None = None, after_block: AfterBlock | None = None
    ) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for name in STAGES:
            x = run_stage(name, getattr(self, name), x, after_block)
        return x
