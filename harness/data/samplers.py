"""Samplers: the cross-modality identity sampler for training, modality-pure test batches.

Under DDP (N processes, see :mod:`harness.dist`) a training sampler draws the *global* batches
of the one-process recipe and gives each rank its share of every batch (:func:`rank_share`), and
test images are split into N contiguous slices (:class:`ShardSampler`): together the ranks see
exactly what one process sees, each test image once.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from mmengine.dist import get_dist_info
from torch.utils.data import Sampler

from harness.registry import DATA_SAMPLERS
from protocols.datasets.base import Modality


def resolve_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """The given ``(rank, world_size)`` (tests simulate ranks), else the process group's."""
    if rank is None or world_size is None:
        rank, world_size = get_dist_info()
    if not 0 <= rank < world_size:
        raise ValueError(f'rank {rank} is not in 0..{world_size - 1}')
    return int(rank), int(world_size)


def check_shardable(per_modality: int, world_size: int) -> None:
    """Refuse a global batch of ``per_modality`` images per modality that the ranks cannot share."""
    if per_modality % world_size:
        raise ValueError(
            f'a global batch of {per_modality} visible + {per_modality} infrared images cannot be '
            f'split evenly over {world_size} processes (GPUs): every rank must get the same share '
            f'of both modalities to keep the one-GPU recipe; use a GPU count that divides '
            f'{per_modality}'
        )


def rank_share(batch: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """Rank ``rank``'s share of a ``[visible block | infrared block]`` batch: the same contiguous
    slice of each block, so each share is again ``[visible | infrared]`` with aligned identities."""
    if world_size == 1:
        return batch
    vis, ir = np.split(batch, 2)
    n = len(vis) // world_size
    return np.concatenate([vis[rank * n : (rank + 1) * n], ir[rank * n : (rank + 1) * n]])


def identity_positions(
    labels: np.ndarray, modalities: np.ndarray
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
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
    identity-major, same identity order in both blocks; the dataloader's ``batch_size`` is
    ``2 * num_ids * num_instances`` (divided by the number of processes under DDP). The draw
    depends only on ``(seed, epoch)`` (private generator), so a resumed run sees the same
    batches. Under DDP every rank draws the same global batches and takes its share of each
    (:func:`rank_share`); ``rank``/``world_size`` default to the process group's.
    """

    def __init__(
        self,
        dataset,
        num_ids: int,
        num_instances: int,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        self.labels = np.asarray(dataset.labels)
        self.modalities = np.asarray(dataset.modalities)
        self.num_ids, self.num_instances, self.seed = num_ids, num_instances, seed
        self.positions = identity_positions(self.labels, self.modalities)
        if len(self.positions) < num_ids:
            raise ValueError(
                f'the sampler needs {num_ids} identities with both visible and infrared '
                f'images per batch, but the training set has {len(self.positions)}; '
                f'lower sampler.num_ids'
            )
        n = max(
            int((self.modalities == Modality.VISIBLE).sum()),
            int((self.modalities == Modality.INFRARED).sum()),
        )
        self.num_batches = n // (num_ids * num_instances) + 1
        self.rank, self.world_size = resolve_world(rank, world_size)
        check_shardable(num_ids * num_instances, self.world_size)
        self.epoch = 0

    @property
    def batch_size(self) -> int:
        """Images per batch on this rank (the global batch on one process)."""
        return 2 * self.num_ids * self.num_instances // self.world_size

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
        return batches

    def __iter__(self) -> Iterator[int]:
        for batch in self._batches():
            yield from rank_share(batch, self.rank, self.world_size).tolist()

    def __len__(self) -> int:
        return self.num_batches * self.batch_size


@DATA_SAMPLERS.register_module()
class ShardSampler(Sampler[int]):
    """Test indices in order, rank ``r`` of ``N`` taking the ``r``-th of N contiguous slices
    (sizes differ by at most one): every image is extracted exactly once over all ranks, with no
    padding (mmengine's ``DefaultSampler`` repeats images to even out the ranks). ``seed``, which
    mmengine passes to every sampler, is not used."""

    def __init__(
        self,
        dataset,
        rank: int | None = None,
        world_size: int | None = None,
        seed: int | None = None,
    ) -> None:
        self.dataset = dataset
        self.rank, self.world_size = resolve_world(rank, world_size)
        n = len(dataset)
        self.start = n * self.rank // self.world_size
        self.stop = n * (self.rank + 1) // self.world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop))

    def __len__(self) -> int:
        return self.stop - self.start


@DATA_SAMPLERS.register_module()
class ModalityBatchSampler:
    """Batches of at most ``batch_size`` indices that never mix modalities (for feature extraction).

    Built by mmengine with the index sampler (:class:`ShardSampler`, which shards under DDP) and
    the dataloader's batch size; every index of the sampler lands in exactly one batch.
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
        return sum(
            -(-int((self.modalities[idx] == m).sum()) // self.batch_size)
            for m in np.unique(self.modalities[idx])
        )
