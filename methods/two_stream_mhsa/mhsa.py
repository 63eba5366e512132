"""BoTNet multi-head self-attention with 2-D relative position logits, and the BoT bottleneck.

Design and sources: the README. Tokens are row-major (``n = i*W + j``); the relative
offset is key minus query, stored at row ``offset + size - 1`` of ``rel_h`` / ``rel_w``.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.resnet import Bottleneck

POS_ENCODINGS = ('rel', 'abs', 'none')


def rel_to_abs(x: Tensor) -> Tensor:
    """``[..., L, 2L-1]`` relative logits -> ``[..., L, L]`` with
    ``out[..., i, m] = x[..., i, m-i+L-1]``.

    The pad/flatten/reshape trick of the BoTNet ports: after one padding column per row, the rows
    re-read with width ``2L-1`` are shifted by one position each, which aligns offsets to keys.
    """
    *lead, length, width = x.shape
    if width != 2 * length - 1:
        raise ValueError(
            f'rel_to_abs expects a last dimension of 2L-1 = {2 * length - 1}, got {width}'
        )
    x = F.pad(x, (0, 1)).flatten(-2)
    x = F.pad(x, (0, length - 1))
    x = x.view(*lead, length + 1, 2 * length - 1)
    return x[..., :length, length - 1 :]


class RelPosMHSA(nn.Module):
    """Channel-preserving MHSA over an ``H x W`` map (no output projection, no dropout).

    ``pos_enc``: ``'rel'`` BoTNet relative logits ``q.R_h[k-i] + q.R_w[l-j]`` (tables shared by the
    heads), ``'abs'`` absolute key embeddings ``q.(P_h[k] + P_w[l])``, ``'none'`` content only.
    ``rel_pos_scaled``: scale q by ``d^-1/2`` before the position logits too (lucidrains); ``False``
    scales the content logits only (timm's default).
    """

    def __init__(
        self,
        dim: int,
        feat_size: tuple[int, int],
        heads: int = 4,
        dim_head: int = 128,
        pos_enc: str = 'rel',
        rel_pos_scaled: bool = True,
    ) -> None:
        super().__init__()
        if pos_enc not in POS_ENCODINGS:
            raise ValueError(f'pos_enc must be one of {POS_ENCODINGS}, got {pos_enc!r}')
        self.feat_size = (int(feat_size[0]), int(feat_size[1]))
        self.heads, self.dim_head = int(heads), int(dim_head)
        self.pos_enc, self.rel_pos_scaled = pos_enc, bool(rel_pos_scaled)
        self.scale = self.dim_head**-0.5
        self.qkv = nn.Conv2d(dim, 3 * self.heads * self.dim_head, 1, bias=False)
        nn.init.trunc_normal_(self.qkv.weight, std=dim**-0.5)
        height, width = self.feat_size
        if pos_enc == 'rel':
            self.rel_h = nn.Parameter(torch.randn(2 * height - 1, self.dim_head) * self.scale)
            self.rel_w = nn.Parameter(torch.randn(2 * width - 1, self.dim_head) * self.scale)
        elif pos_enc == 'abs':
            self.pos_h = nn.Parameter(torch.randn(height, self.dim_head) * self.scale)
            self.pos_w = nn.Parameter(torch.randn(width, self.dim_head) * self.scale)

    def forward(self, x: Tensor, return_attention: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        batch, _, height, width = x.shape
        if (height, width) != self.feat_size:
            raise ValueError(
                f'RelPosMHSA was built for a {self.feat_size[0]}x{self.feat_size[1]} feature map '
                f'but got {height}x{width}; build the model for the input size it runs at '
                f'(model.input_size must equal the config input_size)'
            )
        qkv = self.qkv(x)
        # Attention maths in fp32 even under AMP: q.k over 128 dims overflows fp16 once activations
        # grow (seen on GPU in eval mode), and at N = 162 tokens these matmuls are cheap.
        with torch.autocast(device_type=x.device.type, enabled=False):
            out, attn = self._attend(qkv.float(), batch, height, width)
        out = out.to(qkv.dtype)
        return (out, attn) if return_attention else out

    def _attend(self, qkv: Tensor, batch: int, height: int, width: int) -> tuple[Tensor, Tensor]:
        heads, d, n = self.heads, self.dim_head, height * width
        q, k, v = qkv.reshape(batch, 3, heads, d, n).transpose(-1, -2).unbind(1)  # [B,h,N,d]
        q_scaled = q * self.scale
        logits = q_scaled @ k.transpose(-1, -2)
        q_pos = q_scaled if self.rel_pos_scaled else q
        if self.pos_enc == 'rel':
            logits = logits + self._relative_logits(q_pos, height, width)
        elif self.pos_enc == 'abs':
            emb = (self.pos_h[:, None, :] + self.pos_w[None, :, :]).reshape(n, d)
            logits = logits + q_pos @ emb.t()
        attn = logits.softmax(dim=-1)
        return (attn @ v).transpose(-1, -2).reshape(batch, heads * d, height, width), attn

    def _relative_logits(self, q: Tensor, height: int, width: int) -> Tensor:
        """``[B,h,N,N]`` logits ``q_(i,j) . (R_h[k-i+H-1] + R_w[l-j+W-1])``."""
        batch, heads, n, d = q.shape
        q = q.reshape(batch, heads, height, width, d)
        # width: [B,h,H(i),W(j),W(l)], constant over key rows k
        rel_w = rel_to_abs(q @ self.rel_w.t())
        # height: computed with rows and columns swapped
        # -> [B,h,W(j),H(i),H(k)] -> [B,h,H(i),W(j),H(k)]
        rel_h = rel_to_abs(q.transpose(2, 3) @ self.rel_h.t()).transpose(2, 3)
        logits = rel_h.unsqueeze(-1) + rel_w.unsqueeze(-2)  # [B,h,H(i),W(j),H(k),W(l)]
        return logits.reshape(batch, heads, n, n)

    def extra_repr(self) -> str:
        return (
            f'feat_size={self.feat_size}, heads={self.heads}, dim_head={self.dim_head}, '
            f'pos_enc={self.pos_enc!r}, rel_pos_scaled={self.rel_pos_scaled}'
        )


class BoTBottleneck(nn.Module):
    """torchvision ``Bottleneck`` with its 3x3 conv replaced by :class:`RelPosMHSA` (+ fresh BN).

    conv1/bn1/conv3/bn3/downsample are taken over from the given block (ImageNet weights when the
    trunk was pretrained). The MHSA and its BN live in ``mhsa_branch`` so an optimiser key can put
    them in the new-layer learning-rate group (a key longer than ``'backbone'`` wins in mmengine).
    A strided block attends at the input resolution and then average-pools (BoTNet).
    """

    def __init__(
        self,
        block: Bottleneck,
        feat_size: tuple[int, int],
        heads: int = 4,
        dim_head: int = 128,
        pos_enc: str = 'rel',
        rel_pos_scaled: bool = True,
        zero_init_last_bn: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(block, Bottleneck):
            raise TypeError(
                f'BoT blocks replace torchvision Bottleneck blocks (ResNet-50/101), got '
                f'{type(block).__name__}; use backbone depth 50 or 101'
            )
        width = block.conv1.out_channels
        if heads * dim_head != width:
            raise ValueError(
                f'mhsa_heads * mhsa_dim_head must equal the bottleneck width {width} '
                f'(the block is channel-preserving), got {heads} * {dim_head}'
            )
        if block.conv2.groups != 1 or block.conv2.dilation != (1, 1):
            raise ValueError('BoT blocks need plain 3x3 convs (groups=1, dilation=1) to replace')
        stride = block.conv2.stride[0]
        self.conv1, self.bn1 = block.conv1, block.bn1
        mhsa = RelPosMHSA(width, feat_size, heads, dim_head, pos_enc, rel_pos_scaled)
        layers = [('mhsa', mhsa)]
        if stride > 1:
            layers.append(
                ('pool', nn.AvgPool2d(stride, stride, ceil_mode=True))
            )  # ceil like the strided shortcut
        layers.append(('bn', nn.BatchNorm2d(width)))
        self.mhsa_branch = nn.Sequential(OrderedDict(layers))
        self.conv3, self.bn3, self.downsample = block.conv3, block.bn3, block.downsample
        self.relu = nn.ReLU(inplace=True)
        if zero_init_last_bn:
            nn.init.zeros_(self.bn3.weight)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.mhsa_branch(out))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def layer_out_size(size: int, stride: int) -> int:
    """Output length of a 3x3/1x1 conv (padding k//2) or 3x3/2 max-pool with this stride."""
    return math.ceil(size / stride)


def botify_layer(layer: nn.Sequential, in_size: tuple[int, int], **mhsa_kwargs) -> nn.Sequential:
    """Replace every Bottleneck of a ResNet stage by a BoT block built for the stage's input
    size."""
    blocks, size = [], in_size
    for block in layer:
        blocks.append(BoTBottleneck(block, size, **mhsa_kwargs))
        stride = block.conv2.stride[0]
        size = (layer_out_size(size[0], stride), layer_out_size(size[1], stride))
    return nn.Sequential(*blocks)
