"""Training-pipeline throughput: decode-once cache + tensor augmentation vs PIL per sample.

The reference is written here, as the official repositories run it: every epoch each sample is
opened with PIL, resized, padded, cropped, flipped, converted and normalised, then randomly erased.
Both pipelines use the same images, the same DataLoader settings and batch size; ours also pays for
normalisation (in the data preprocessor, as in training). The one-time cache build is reported
apart.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from harness.data.datasets import VIReIDTrainSet, cached_images
from harness.models.data_preprocessor import IMAGENET_MEAN, IMAGENET_STD, ReIDDataPreprocessor
from protocols.datasets import load_dataset

QUICK = dict(ids=20, batches=3, workers=0)
PIPELINE = [
    dict(type='Pad', padding=10),
    dict(type='RandomCrop'),
    dict(type='RandomHorizontalFlip'),
    dict(type='RandomErasing', p=0.5),
]


class PILPerSample(Dataset):
    """The official repositories' way: decode and augment from the file every time."""

    def __init__(self, root: str, records, size: tuple[int, int]) -> None:
        self.root, self.records = root, records
        self.transform = T.Compose(
            [
                T.Resize(size),
                T.Pad(10),
                T.RandomCrop(size),
                T.RandomHorizontalFlip(),
                T.ToTensor(),
                T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
                T.RandomErasing(p=0.5),
            ]
        )

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int):
        with Image.open(Path(self.root) / self.records[i].path) as im:
            return self.transform(im.convert('RGB'))


def _throughput(loader: DataLoader, batches: int, post=None) -> float:
    it = iter(loader)
    next(it)  # worker start-up is not throughput
    n, start = 0, time.perf_counter()
    for _ in range(batches):
        batch = next(it)
        if post is not None:
            batch = post(batch)
        n += len(batch['inputs'] if isinstance(batch, dict) else batch)
    return n / (time.perf_counter() - start)


def run(
    root: str | None = None,
    ids: int = 60,
    size: tuple[int, int] = (288, 144),
    batch_size: int = 64,
    batches: int = 20,
    workers: int = 2,
) -> dict:
    tmp = tempfile.TemporaryDirectory()
    if root is None:
        from protocols.datasets.synthetic import generate

        root = str(generate('sysu', Path(tmp.name) / 'sysu', ids=ids))
    protocol = dict(dataset='sysu')
    ds = load_dataset('sysu', root)
    records = ds.train_set().records
    cache_dir = Path(tmp.name) / 'cache'
    start = time.perf_counter()
    cached = cached_images(ds, records, size, cache_dir)  # the entry VIReIDTrainSet reads
    cache_s = time.perf_counter() - start

    ours = VIReIDTrainSet('sysu', root, protocol, size, PIPELINE, cache_dir=str(cache_dir))
    pre = ReIDDataPreprocessor()
    kw = dict(
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        generator=torch.Generator().manual_seed(0),
    )
    ours_ips = _throughput(DataLoader(ours, **kw), batches, lambda b: pre(b, training=True))
    ref_ips = _throughput(DataLoader(PILPerSample(root, records, size), **kw), batches)
    tmp.cleanup()
    result = dict(
        images=len(records),
        input_size=list(size),
        batch_size=batch_size,
        workers=workers,
        cache_build_s=round(cache_s, 2),
        cache_images=len(cached.entry),
        ours_images_per_s=round(ours_ips, 1),
        pil_per_sample_images_per_s=round(ref_ips, 1),
        speedup=round(ours_ips / ref_ips, 2),
        target=2.0,
    )
    print(
        f'training pipeline, {len(records)} images at {size[0]}x{size[1]}, batch {batch_size}, '
        f'{workers} workers:\n  decode-once cache + tensor aug: {ours_ips:8.1f} images/s\n'
        f'  PIL per sample (official):      {ref_ips:8.1f} images/s\n'
        f'  speed-up: {ours_ips / ref_ips:.2f}x (target >= 2x); '
        f'one-time cache build {cache_s:.1f} s for the {len(cached.entry)} images of the dataset'
    )
    return result
