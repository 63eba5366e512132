"""Auxiliary-modality generators (see the README): images that keep a visible image's content,
not its colour.

All pixel-space operations take and return float images in the loader's 0..255 range, before
the ImageNet normalisation, so V and its auxiliary copy stay pixel-aligned.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

AUX_KINDS = ('gray', 'xmodality', 'caj', 'random_gray', 'none')
AUX_ROUTES = ('infrared', 'visible', 'third')
# ITU-R 601 luma, as in ICCV21_CAJ/ChannelAug.py and torchvision's rgb_to_grayscale
GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)


def to_gray(pixels: Tensor) -> Tensor:
    """``[B,3,H,W]`` RGB -> the luma replicated to 3 channels."""
    w = pixels.new_tensor(GRAY_WEIGHTS).view(1, 3, 1, 1)
    return (pixels * w).sum(dim=1, keepdim=True).expand_as(pixels).contiguous()


def random_gray(pixels: Tensor, p: float = 0.5) -> Tensor:
    """Each image replaced by its grayscale version with probability ``p``."""
    pick = torch.rand(pixels.shape[0], device=pixels.device) < p
    return torch.where(pick.view(-1, 1, 1, 1), to_gray(pixels), pixels)


def channel_exchange(pixels: Tensor, gray_p: float = 0.5) -> Tensor:
    """CAJ's ``ChannelAdapGray``: per image, with probability 1/4 each, all channels := R, G or B,
    or keep the image (which then turns grayscale with probability ``gray_p``)."""
    n = pixels.shape[0]
    choice = torch.randint(0, 4, (n,), device=pixels.device)
    out = to_gray(pixels)
    keep = (choice == 3) & (torch.rand(n, device=pixels.device) >= gray_p)
    out = torch.where(keep.view(-1, 1, 1, 1), pixels, out)
    for c in range(3):
        single = pixels[:, c : c + 1].expand_as(pixels)
        out = torch.where((choice == c).view(-1, 1, 1, 1), single, out)
    return out


class XModalityGenerator(nn.Module):
    """X-modality style lightweight generator ``Conv1x1(3->1) -> ReLU -> Conv1x1(1->3)``.

    Works on the normalised image and is trained only by the losses the auxiliary samples enter
    (Li et al., AAAI 2020; the exact generator of that paper is not reproduced here).
    """

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 1, 1), nn.ReLU(inplace=True), nn.Conv2d(1, 3, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
