"""CAJ's channel augmentations (Ye et al., ICCV 2021), on normalised ``[3, H, W]`` float images.

mangye16/Cross-Modal-Re-ID-baseline@e817a26, ``ICCV21_CAJ/``: ``ChannelAug.py``
(``ChannelRandomErasing`` lines 95-140, ``ChannelAdapGray`` 51-93) and ``data_loader.py``
(``ChannelExchange`` 9-43). The official pipelines apply them after ``ToTensor`` and
``Normalize`` (``data_loader.py`` 66-95), so a channel copied into the others, the grey mix and the
erasing constants are all in normalised space: these transforms refuse uint8 images (list the
harness's ``Normalize`` before them). The official code draws from Python's unseeded ``random``;
these draw from torch's global RNG, which the harness seeds per epoch and worker (exact resume),
with the same outcome probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from harness.data.transforms import RandomErasing
from harness.registry import TRANSFORMS

# ChannelRandomErasing's fill: the CIFAR-10 channel means (ChannelAug.py line 107), written into
# the normalised image as they are.
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)


def _check_normalised(img: Tensor, name: str) -> None:
    if not img.is_floating_point() or img.dim() != 3 or img.shape[0] != 3:
        raise ValueError(
            f'{name} works on a normalised float [3, H, W] image (the official code applies it '
            f'after ToTensor and Normalize); got {img.dtype} {tuple(img.shape)}: put '
            "dict(type='Normalize') before it in train_pipeline"
        )


def _replicate(img: Tensor, channel: int) -> Tensor:
    """Channel ``channel`` written into all three (``img[k] = img[channel]``)."""
    return img[channel].expand_as(img).clone()


def _grey(img: Tensor) -> Tensor:
    """``0.2989 R + 0.5870 G + 0.1140 B`` in all three channels, as the official code sums it."""
    return (0.2989 * img[0] + 0.5870 * img[1] + 0.1140 * img[2]).expand_as(img).clone()


@TRANSFORMS.register_module()
class ChannelRandomErasing(RandomErasing):
    """Random erasing with CAJ's fill: with probability ``p``, up to 100 tries of a box of area
    U(sl, sh)·H·W and aspect U(r1, 1/r1), whose three channels are set to ``mean`` (CIFAR-10 means,
    in normalised space). The box rule is Zhong et al.'s, as :class:`RandomErasing` has it; only
    the fill differs (all three channels are erased, whatever the name says)."""

    def __init__(
        self,
        p: float = 0.5,
        sl: float = 0.02,
        sh: float = 0.4,
        r1: float = 0.3,
        mean: Sequence[float] = CIFAR_MEAN,
    ) -> None:
        super().__init__(
            p=p, scale=(sl, sh), ratio=(r1, 1 / r1), ratio_sampling='uniform', attempts=100
        )
        if len(mean) != 3:
            raise ValueError(f'ChannelRandomErasing.mean needs 3 values, got {mean!r}')
        self.value = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)

    def __call__(self, img: Tensor) -> Tensor:
        _check_normalised(img, 'ChannelRandomErasing')
        return super().__call__(img)


@TRANSFORMS.register_module()
class ChannelExchange:
    """CAJ's random channel exchange: ``idx = randint(0, gray)`` (inclusive); ``idx`` 0, 1, 2
    copies channel R, G, B into all three, ``idx`` 3 and above writes the grey mix. With the
    official ``gray=2`` each channel has probability 1/3 and grey never happens. (The official
    comments call channel 1 "B" and channel 2 "G"; the code copies channel 1 and 2.)"""

    def __init__(self, gray: int = 2) -> None:
        if gray < 0:
            raise ValueError(f'ChannelExchange.gray must be >= 0, got {gray}')
        self.gray = int(gray)

    def __call__(self, img: Tensor) -> Tensor:
        _check_normalised(img, 'ChannelExchange')
        idx = int(torch.randint(0, self.gray + 1, ()))
        return _replicate(img, idx) if idx < 3 else _grey(img)


@TRANSFORMS.register_module()
class ChannelAdapGray:
    """CAJ's channel-adaptive grey (on infrared images): ``idx = randint(0, 3)``; 0, 1, 2 copy that
    channel into all three; 3 writes the grey mix with probability ``p`` and keeps the image
    otherwise. The official ``probability`` gates only the grey branch (its global gate is commented
    out, ``ChannelAug.py`` lines 67-68): outcomes R, G, B 1/4 each, grey p/4, unchanged (1-p)/4."""

    def __init__(self, p: float = 0.5) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f'ChannelAdapGray.p must be in [0, 1], got {p}')
        self.p = float(p)

    def __call__(self, img: Tensor) -> Tensor:
        _check_normalised(img, 'ChannelAdapGray')
        idx = int(torch.randint(0, 4, ()))
        if idx < 3:
            return _replicate(img, idx)
        # official: `if random.uniform(0, 1) > probability: keep`, else grey
        return img if float(torch.rand(())) > self.p else _grey(img)
