"""Training and test sets handed to the mmengine Runner.

Both read the dataset through ``protocols`` (the one place that knows layouts and protocols) and
serve uint8 ``[3, H, W]`` tensors from the decode-once cache, as rows of the one entry of their
dataset root (float, normalised, when a training pipeline ends with ``Normalize`` and the steps
after it). With ``train_views`` a training image
yields one augmented view per entry of its modality, and :func:`collate_views` lays the batch out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from harness.data.cache import (
    DEFAULT_RESIZE_FILTER,
    CachedImages,
    image_pool,
    load_images,
    pool_label,
)
from harness.data.transforms import build_pipeline, build_views
from harness.registry import DATASETS, FUNCTIONS
from protocols.datasets import TrainSet, load_dataset
from protocols.evaluation import check_protocol, test_records


def train_set(dataset: str, data_root: str | Path, protocol: dict) -> TrainSet:
    """The protocol's training images: SYSU train+val ids; RegDB the split's train files."""
    return _train_set(load_dataset(dataset, data_root), protocol)


def _train_set(ds, protocol: dict) -> TrainSet:
    if ds.name == 'regdb':
        return ds.train_set(check_protocol('regdb', protocol)['split'])
    return ds.train_set()


def cached_images(
    ds,
    records: Sequence,
    input_size: Sequence[int],
    cache_dir: str | Path | None = None,
    resize_filter: str = DEFAULT_RESIZE_FILTER,
) -> CachedImages:
    """``records`` of the dataset index ``ds``, read from the cache entry of every image of its
    root (:func:`harness.data.cache.image_pool`), which every list of that root shares."""
    return load_images(
        ds.root,
        records,
        input_size,
        cache_dir,
        resize_filter=resize_filter,
        label=pool_label(ds),
        pool=image_pool(ds),
    )


def _to_chw(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(arr)).permute(2, 0, 1).contiguous()


@DATASETS.register_module()
class VIReIDTrainSet(Dataset):
    """Training images with labels 0..C-1; ``labels``/``modalities`` arrays feed the samplers.

    ``views`` (config ``train_views``, see :func:`harness.data.transforms.build_views`): each item's
    ``inputs`` is then a list with one tensor per view of its modality, each made by an independent
    run of ``pipeline`` followed by that view's transforms; batch them with :func:`collate_views`.
    """

    def __init__(
        self,
        dataset: str,
        data_root: str,
        protocol: dict,
        input_size: Sequence[int],
        pipeline: Sequence[dict] | None = None,
        cache_dir: str | None = None,
        resize_filter: str = DEFAULT_RESIZE_FILTER,
        views: Mapping[str, Sequence[Sequence[dict]]] | None = None,
    ) -> None:
        self.dataset, self.data_root = dataset, str(data_root)
        ds = load_dataset(dataset, data_root)
        ts = _train_set(ds, protocol)
        self.records = ts.records
        self.num_classes = ts.num_classes
        self.labels = np.asarray(ts.labels, dtype=np.int64)
        self.modalities = np.asarray([int(r.modality) for r in self.records], dtype=np.int64)
        self.cams = np.asarray([r.cam for r in self.records], dtype=np.int64)
        self.images = cached_images(ds, self.records, input_size, cache_dir, resize_filter)
        self.pipeline = build_pipeline(pipeline, input_size)
        self.views = build_views(views, input_size)
        self.metainfo = dict(dataset=dataset, num_classes=int(self.num_classes))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        image = _to_chw(self.images[i])
        modality = int(self.modalities[i])
        if self.views is None:
            inputs = self.pipeline(image)
        else:
            inputs = [view(self.pipeline(image)) for view in self.views[modality]]
        return dict(
            inputs=inputs,
            data_samples=dict(
                label=int(self.labels[i]), modality=modality, cam=int(self.cams[i]), index=int(i)
            ),
        )


@FUNCTIONS.register_module()
def collate_views(batch: Sequence[dict]) -> dict:
    """Batches :class:`VIReIDTrainSet` items that carry several views (``train_views``).

    Rows are laid out modality by modality (in the sampler's order, so ``[visible | infrared]``),
    and within a modality view by view, each view block in the sampler's order: CAJ's two visible
    views give ``[visible view 0 | visible view 1 | infrared]``, labels ``cat(l1, l1, l2)``, the
    order of its ``train_ext.py``. ``data_samples`` gains ``view`` (the view's position).
    """
    groups: dict[int, list[dict]] = {}
    for item in batch:
        groups.setdefault(int(item['data_samples']['modality']), []).append(item)
    images, samples = [], []
    for items in groups.values():
        counts = {len(item['inputs']) for item in items}
        if len(counts) != 1:
            raise ValueError(f'items of one modality carry different numbers of views: {counts}')
        for view in range(counts.pop()):
            for item in items:
                images.append(item['inputs'][view])
                samples.append(dict(item['data_samples'], view=view))
    dtypes = {img.dtype for img in images}
    if len(dtypes) != 1:
        raise ValueError(
            f'the views of a batch end in different dtypes {sorted(map(str, dtypes))}: either '
            'every view is normalised (Normalize in the shared train_pipeline) or none is'
        )
    return dict(
        inputs=torch.stack(images),
        data_samples={k: torch.tensor([s[k] for s in samples]) for k in samples[0]},
    )


@DATASETS.register_module()
class VIReIDTestSet(Dataset):
    """Every image the protocol scores (queries and gallery candidates), each once.

    ``label`` here is the person id; features are matched back to records by ``index``.
    """

    def __init__(
        self,
        dataset: str,
        data_root: str,
        protocol: dict,
        input_size: Sequence[int],
        cache_dir: str | None = None,
        resize_filter: str = DEFAULT_RESIZE_FILTER,
    ) -> None:
        self.dataset, self.data_root, self.protocol = dataset, str(data_root), dict(protocol)
        ds = load_dataset(dataset, data_root)
        self.records = test_records(ds, None, protocol)
        self.modalities = np.asarray([int(r.modality) for r in self.records], dtype=np.int64)
        self.images = cached_images(ds, self.records, input_size, cache_dir, resize_filter)
        self.metainfo = dict(dataset=dataset)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        r = self.records[i]
        return dict(
            inputs=_to_chw(self.images[i]),
            data_samples=dict(
                label=int(r.pid), modality=int(r.modality), cam=int(r.cam), index=int(i)
            ),
        )
