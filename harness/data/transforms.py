"""Training augmentations on uint8 ``[3, H, W]`` tensors (after the decode-once cache).

Working on tensors instead of PIL images lets the cache skip JPEG decoding every epoch. Each
transform is a callable registered in ``TRANSFORMS`` so configs list them by name. Randomness comes
from the global torch RNG, which the harness re-seeds per epoch and per worker (exact resume).

Images stay uint8 and are normalised on the device (``ReIDDataPreprocessor``), unless a pipeline
needs normalised values for a later step (CAJ's channel augmentations): ``Normalize`` then turns
the image into the float tensor torchvision's ``ToTensor`` + ``Normalize`` would give, and the
preprocessor leaves the batch as it is.

``train_views`` (:func:`build_views`) gives a modality several views of each sampled image, each
with its own transforms after the shared pipeline (CAJ: two visible views, one infrared).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from harness.models.data_preprocessor import IMAGENET_MEAN, IMAGENET_STD
from harness.registry import TRANSFORMS
from protocols.datasets.base import Modality


@TRANSFORMS.register_module()
class RandomHorizontalFlip:
    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, img: Tensor) -> Tensor:
        return img.flip(-1) if torch.rand(()) < self.p else img


@TRANSFORMS.register_module()
class Pad:
    """Constant padding on every side (AGW/MMN pad with 0, MPANet with 127)."""

    def __init__(self, padding: int = 10, fill: int = 0) -> None:
        self.padding, self.fill = padding, fill

    def __call__(self, img: Tensor) -> Tensor:
        return TF.pad(img, [self.padding], fill=self.fill)


@TRANSFORMS.register_module()
class RandomCrop:
    """Random crop to ``size`` (default: the config's ``input_size``, filled in by the harness)."""

    def __init__(self, size: Sequence[int] | None = None) -> None:
        self.size = tuple(size) if size is not None else None

    def __call__(self, img: Tensor) -> Tensor:
        if self.size is None:
            raise ValueError('RandomCrop needs size=(H, W); the harness sets it from input_size')
        h, w = self.size
        top = int(torch.randint(0, img.shape[-2] - h + 1, ()))
        left = int(torch.randint(0, img.shape[-1] - w + 1, ()))
        return img[..., top : top + h, left : left + w]


@TRANSFORMS.register_module()
class RandomErasing:
    """Random erasing (Zhong et al.) on uint8 images.

    Erased pixels take the ImageNet mean colour, which is 0 after normalisation: the same value the
    official code writes into the normalised tensor. ``ratio_sampling='uniform'`` draws the aspect
    ratio uniformly (Zhong's code, torchvision 0.4); ``'log'`` as current torchvision.
    """

    def __init__(
        self,
        p: float = 0.5,
        scale: Sequence[float] = (0.02, 0.4),
        ratio: Sequence[float] = (0.3, 3.3),
        ratio_sampling: str = 'uniform',
        attempts: int = 100,
        value: Sequence[int] | None = None,
    ) -> None:
        if ratio_sampling not in ('uniform', 'log'):
            raise ValueError(f"ratio_sampling must be 'uniform' or 'log', got {ratio_sampling!r}")
        self.p, self.scale, self.ratio = p, tuple(scale), tuple(ratio)
        self.ratio_sampling, self.attempts = ratio_sampling, attempts
        fill = value if value is not None else [round(m * 255) for m in IMAGENET_MEAN]
        self.value = torch.tensor(fill, dtype=torch.uint8).view(3, 1, 1)

    def __call__(self, img: Tensor) -> Tensor:
        if torch.rand(()) >= self.p:
            return img
        h, w = img.shape[-2:]
        area = h * w
        for _ in range(self.attempts):
            target = area * float(torch.empty(()).uniform_(*self.scale))
            if self.ratio_sampling == 'uniform':
                r = float(torch.empty(()).uniform_(*self.ratio))
            else:
                r = math.exp(
                    float(
                        torch.empty(()).uniform_(math.log(self.ratio[0]), math.log(self.ratio[1]))
                    )
                )
            eh, ew = int(round(math.sqrt(target * r))), int(round(math.sqrt(target / r)))
            if 0 < eh < h and 0 < ew < w:
                top = int(torch.randint(0, h - eh + 1, ()))
                left = int(torch.randint(0, w - ew + 1, ()))
                img = img.clone()
                img[:, top : top + eh, left : left + ew] = self.value
                return img
        return img


@TRANSFORMS.register_module()
class ColorJitter:
    def __init__(
        self,
        brightness: float = 0.0,
        contrast: float = 0.0,
        saturation: float = 0.0,
        hue: float = 0.0,
    ) -> None:
        from torchvision.transforms import v2

        self.op = v2.ColorJitter(brightness, contrast, saturation, hue)

    def __call__(self, img: Tensor) -> Tensor:
        return self.op(img)


@TRANSFORMS.register_module()
class RandomGrayscale:
    """Grey copy in all three channels with probability ``p`` (ITU-R 601 luma, as torchvision)."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, img: Tensor) -> Tensor:
        return TF.rgb_to_grayscale(img, num_output_channels=3) if torch.rand(()) < self.p else img


@TRANSFORMS.register_module()
class Normalize:
    """uint8 ``[3, H, W]`` -> float32 ``(x / 255 - mean) / std``: torchvision's ``ToTensor()``
    followed by ``Normalize(mean, std)`` (ImageNet statistics, those of the data preprocessor).

    Only for pipelines whose later steps work on normalised values; the loader then moves 4 bytes
    per pixel instead of 1, and the data preprocessor does not normalise the batch again.
    """

    def __init__(
        self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
    ) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def __call__(self, img: Tensor) -> Tensor:
        if img.dtype != torch.uint8:
            raise ValueError(
                f'Normalize expects a uint8 image, got {img.dtype}: the pipeline normalises twice '
                '(list Normalize once, before the steps that need normalised values)'
            )
        # the operations of ToTensor (x / 255) and F.normalize (sub_, div_), in their order
        return img.float().div_(255).sub_(self.mean).div_(self.std)


class Compose:
    """Applies transforms in order; built from config dicts by :func:`build_pipeline`."""

    def __init__(self, transforms: Sequence) -> None:
        self.transforms = list(transforms)

    def __call__(self, img: Tensor) -> Tensor:
        for t in self.transforms:
            img = t(img)
        return img


def build_pipeline(cfgs: Sequence[dict] | None, input_size: Sequence[int]) -> Compose:
    """Builds the train pipeline; ``RandomCrop`` without a size crops back to ``input_size``."""
    transforms = []
    for cfg in cfgs or ():
        cfg = dict(cfg)
        if cfg.get('type') == 'RandomCrop' and cfg.get('size') is None:
            cfg['size'] = tuple(input_size)
        transforms.append(TRANSFORMS.build(cfg))
    return Compose(transforms)


def build_views(
    views: Mapping[str, Sequence[Sequence[dict]]] | None, input_size: Sequence[int]
) -> dict[Modality, list[Compose]] | None:
    """``train_views`` -> per modality, one pipeline per view (run after the shared pipeline).

    ``views`` maps ``'visible'`` / ``'infrared'`` to a list with one entry per view, each a list of
    transform configs (``[]``: the shared pipeline alone). A modality left out has one plain view.
    ``None`` (the default): one view of every image, the harness's ordinary batches.
    """
    if views is None:
        return None
    if not isinstance(views, Mapping):
        raise ValueError(
            f'train_views must be a dict like dict(visible=[[], [...]], infrared=[[...]]), '
            f'got {type(views).__name__}'
        )
    out = {m: [Compose([])] for m in Modality}
    for name, per_view in views.items():
        modality = Modality.__members__.get(str(name).upper())
        if modality is None:
            raise ValueError(
                f'train_views.{name}: unknown modality; use '
                f'{" or ".join(m.name.lower() for m in Modality)}'
            )
        if (
            isinstance(per_view, (str, Mapping))
            or not isinstance(per_view, Sequence)
            or not per_view
            or not all(
                isinstance(v, Sequence) and not isinstance(v, (str, Mapping)) for v in per_view
            )
        ):
            raise ValueError(
                f'train_views.{name} must be a non-empty list of views, each a list of transform '
                f'configs ([] for the shared pipeline alone), got {per_view!r}'
            )
        out[modality] = [build_pipeline(v, input_size) for v in per_view]
    return out
