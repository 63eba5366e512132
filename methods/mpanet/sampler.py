"""MPANet's identity sampler ("identity_random": the official ``data/sampler.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

from harness.data.samplers import check_shardable, identity_positions, rank_share, resolve_world
from harness.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class MPANetIdentitySampler(Sampler[int]):
    """P identities x (k/2 visible + k/2 infrared), every identity's images used about once per
    epoch.

    Per epoch, for every identity with images of both modalities: if both modalities have fewer
    than ``num_instances`` (= k/2) images, draw ``num_instances`` of each with replacement; then
    subsample the larger modality without replacement to the smaller one's size ``m``, shuffle both
    and cut them into ``m // num_instances`` chunks (``num_instances`` of each modality). Batches
    draw
    ``num_ids`` distinct identities uniformly among those with chunks left and take one chunk of
    each; the epoch ends when fewer than ``num_ids`` identities have chunks (the rest is dropped).
    An identity with no chunk (enough images in one modality only) is skipped (official: a crash).

    One epoch is the full pass, and ``len()`` is its exact length, computed from the epoch's plan
    (the official pre-estimate halves training under ignite >= 0.3, issue #11). Batches come out in
    the harness layout ``[visible block | infrared block]``, identity-major, same identity order.
    The plan depends only on ``(seed, epoch)`` (private generator). Under DDP every rank draws the
    same plan and takes its share of each batch (``harness.data.samplers.rank_share``).
    """

    def __init__(
        self,
        dataset,
        num_ids: int,
        num_instances: int,
        seed: int | None = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        self.labels = np.asarray(dataset.labels)
        self.modalities = np.asarray(dataset.modalities)
        if self.labels.shape != self.modalities.shape or self.labels.ndim != 1:
            raise ValueError(
                f'dataset.labels {self.labels.shape} and dataset.modalities '
                f'{self.modalities.shape} must be 1-D arrays of the same length'
            )
        if num_ids < 1 or num_instances < 1:
            raise ValueError(
                f'sampler.num_ids and sampler.num_instances must be >= 1, '
                f'got {num_ids} and {num_instances}'
            )
        self.num_ids, self.num_instances = num_ids, num_instances
        self.seed = 0 if seed is None else int(seed)
        self.positions = identity_positions(self.labels, self.modalities)
        if len(self.positions) < num_ids:
            raise ValueError(
                f'MPANetIdentitySampler needs {num_ids} identities with both visible '
                'and infrared images per batch, but the training set has '
                f'{len(self.positions)}; lower sampler.num_ids'
            )
        self.rank, self.world_size = resolve_world(rank, world_size)
        check_shardable(num_ids * num_instances, self.world_size)
        self.epoch = 0
        self._plan: list[np.ndarray] | None = None

    @property
    def batch_size(self) -> int:
        """Images per batch on this rank (the global batch on one process)."""
        return 2 * self.num_ids * self.num_instances // self.world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._plan = None

    def _chunks(self, rng: np.random.Generator) -> dict[int, list[tuple[np.ndarray, np.ndarray]]]:
        half = self.num_instances
        chunks = {}
        for pid, (vis, ir) in self.positions.items():
            if len(vis) < half and len(ir) < half:
                ir = rng.choice(ir, size=half, replace=True)
                vis = rng.choice(vis, size=half, replace=True)
            m = min(len(vis), len(ir))
            if len(ir) > m:
                ir = rng.choice(ir, size=m, replace=False)
            if len(vis) > m:
                vis = rng.choice(vis, size=m, replace=False)
            ir, vis = rng.permutation(ir), rng.permutation(vis)
            n = m // half
            if n:
                cuts = [slice(i * half, (i + 1) * half) for i in range(n)]
                chunks[pid] = [(vis[cut], ir[cut]) for cut in cuts]
        return chunks

    def plan(self) -> list[np.ndarray]:
        """This epoch's batches (all ranks), each ``[visible block | infrared block]``."""
        if self._plan is None:
            rng = np.random.default_rng([self.seed, self.epoch])
            chunks = self._chunks(rng)
            available = sorted(chunks)
            batches = []
            while len(available) >= self.num_ids:
                chosen = rng.choice(available, size=self.num_ids, replace=False)
                picked = [chunks[int(pid)].pop(0) for pid in chosen]
                for pid in chosen:
                    if not chunks[int(pid)]:
                        available.remove(int(pid))
                batches.append(np.concatenate([v for v, _ in picked] + [i for _, i in picked]))
            self._plan = batches
        return self._plan

    def __iter__(self) -> Iterator[int]:
        for batch in self.plan():
            yield from rank_share(batch, self.rank, self.world_size).tolist()

    def __len__(self) -> int:
        return len(self.plan()) * self.batch_size
