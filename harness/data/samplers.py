"""Samplers: the cross-modality identity sampler for training, modality-pure test batches."""
from __future__ import annotations

from typing import Iterator

import numpy as np
from mmengine.dist import get_dist_info
from torch.utils.data import Sampler

from harness.registry import DATA_SAMPLERS
from protocols.datasets.base import Modality


def identity_positions(labels: np.ndarray, modalities: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per identity seen in both modalities: (visible indices, infrared indices)."""
    out = {}
    for pid in np.unique(labels):
        vis = np.flatnonzero((labels == pid) & (modalities == Modality.VISIBLE))
        ir = np.flatnonzero((labels == pid) & (modalities == Modality.INFRARED))
        if len(vis) and len(ir):
            out[int(pid)] = (vis, ir)
    return out


@DATA_SAMPLERS.register_module()
class CrossModalityIdentitySampler(Sampler[int]):
    """P identities x (K visible + K infrared) per batch, the rule of AGW's ``IdentitySampler``.

    Per batch: ``num_ids`` identities drawn without replacement, ``num_instances`` images per
    identity and modality drawn with replacement. Epoch length as the official code runs it:
    ``N // (P*K) + 1`` batches with ``N = max(#visible, #infrared)`` training images.

    Yields dataset indices batch by batch, each batch laid out ``[visible block | infrared block]``,
    identity-major, same identity order in both blocks; the dataloader's ``batch_size`` must be
    ``2 * num_ids * num_instances``. The draw depends only on ``(seed, epoch)`` (private
    generator), so a resumed run sees the same batches. Under DDP each rank takes every
    ``world_size``-th batch of the epoch's plan.
    """

    def __init__(self, dataset, num_ids: int, num_instances: int, seed: int = 0) -> None:
        self.labels = np.asarray(dataset.labels)
        self.modalities = np.asarray(dataset.modalities)
        self.num_ids, self.num_instances, self.seed = num_ids, num_instances, seed
        self.positions = identity_positions(self.labels, self.modalities)
        if len(self.positions) < num_ids:
            raise ValueError(f'the sampler needs {num_ids} identities with both visible and infrared '
                             f'images per batch, but the training set has {len(self.positions)}; '
                             f'lower sampler.num_ids')
        n = max(int((self.modalities == Modality.VISIBLE).sum()), int((self.modalities == Modality.INFRARED).sum()))
        self.num_batches = n // (num_ids * num_instances) + 1
        self.rank, self.world_size = get_dist_info()
        self.epoch = 0

    @property
    def batch_size(self) -> int:
        return 2 * self.num_ids * self.num_instances

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch])
        ids = np.array(sorted(self.positions))
        batches = []
        for _ in range(self.num_batches):
            chosen = rng.choice(ids, self.num_ids, replace=False)
            vis = [rng.choice(self.positions[int(p)][0], self.num_instances) for p in chosen]
            ir = [rng.choice(self.positions[int(p)][1], self.num_instances) for p in chosen]
            batches.append(np.concatenate(vis + ir))
        return batches[self.rank::self.world_size]

    def __iter__(self) -> Iterator[int]:
        for batch in self._batches():
            yield from batch.tolist()

    def __len__(self) -> int:
        return len(range(self.rank, self.num_batches, self.world_size)) * self.batch_size


@DATA_SAMPLERS.register_module()
class ModalityBatchSampler:
    """Batches of at most ``batch_size`` indices that never mix modalities (for feature extraction).

    Built by mmengine with the index sampler (``DefaultSampler(shuffle=False)``, which also shards
    under DDP) and the dataloader's batch size.
    """

    def __init__(self, sampler, batch_size: int, drop_last: bool = False) -> None:
        self.sampler, self.batch_size = sampler, batch_size
        self.modalities = np.asarray(sampler.dataset.modalities)

    def __iter__(self) -> Iterator[list[int]]:
        pending: dict[int, list[int]] = {}
        for idx in self.sampler:
            bucket = pending.setdefault(int(self.modalities[idx]), [])
            bucket.append(idx)
            if len(bucket) == self.batch_size:
                yield bucket
                pending[int(self.modalities[idx])] = []
        for bucket in pending.values():
            if bucket:
                yield bucket

    def __len__(self) -> int:
        idx = np.fromiter(iter(self.sampler), dtype=np.int64)
        return sum(-(-int((self.modalities[idx] == m).sum()) // self.batch_size) for m in np.unique(self.modalities[idx]))
