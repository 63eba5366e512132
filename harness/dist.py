"""One run on N GPUs trains the one-GPU recipe: the pieces that keep it so.

The official recipes are single-GPU: one batch of P identities x (K visible + K infrared) per
step, a learning rate tuned for it, BatchNorm statistics over the whole batch, and losses that
compare every sample with every other (triplet, hetero-centre, centre-cluster, DCL). Under
``torchrun`` with N processes the harness keeps all of that:

- the training samplers hand every rank its 1/N share of *each* global batch, both modalities
  (:func:`harness.data.samplers.rank_share`), so the steps per epoch and the learning rate stay;
- per-sample losses (identity cross-entropy, ...) are means over the local share; the gradient
  averaging of DistributedDataParallel turns them into the global mean, because shares are equal;
- batch-level losses are computed on the gathered global batch (:func:`gather_batch`), in the
  same row order one process would see, with gradients flowing back to every rank's share;
- BatchNorm layers are synchronised (``SyncBatchNorm``; the engine sets mmengine's ``sync_bn``).

A model declares that its losses gather with the class attribute ``gathers_global_batch = True``
(:class:`harness.models.base.VIReIDModel`); a run of a model that does not is recorded as not
comparable when it uses more than one process.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import Tensor


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group; ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def launch_world_size(launcher: str) -> int:
    """Processes a run will have, known before mmengine creates the process group: from the
    environment its launcher sets (torchrun: WORLD_SIZE; srun: SLURM_NTASKS; mpirun)."""
    variable = {
        'pytorch': 'WORLD_SIZE',
        'slurm': 'SLURM_NTASKS',
        'mpi': 'OMPI_COMM_WORLD_SIZE',
    }.get(launcher)
    return int(os.environ.get(variable, '1')) if variable else 1


class _AllGather(torch.autograd.Function):
    """``all_gather`` + concatenation whose backward returns each rank the summed gradient of
    its own rows: every rank computes the same loss from the gathered tensor, so the sum over
    ranks, averaged again by DistributedDataParallel, is the one-process gradient."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        rank, size = world()
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(size)]
        dist.all_gather(parts, x)
        ctx.rank, ctx.rows = rank, x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad.narrow(0, ctx.rank * ctx.rows, ctx.rows)


def all_gather_with_grad(x: Tensor) -> Tensor:
    """Every rank's ``x`` (same shape on every rank) concatenated in rank order, differentiable."""
    _, size = world()
    if size == 1:
        return x
    return _AllGather.apply(x)


def gather_batch(x: Tensor, blocks: int = 2) -> Tensor:
    """The global batch's rows of ``x`` in the order one process would hold them.

    Each rank's ``x`` consists of ``blocks`` equal row blocks (a training batch: ``[visible |
    infrared]``; after a model adds generated images, e.g. MMN's ``[V | M_V | I | M_I]``, 4),
    each the rank's share of the corresponding global block. The result joins block ``j`` of all
    ranks, for ``j = 0 .. blocks - 1``, which with the samplers' contiguous shares restores the
    global batch exactly. Integer tensors (labels) gather too (no gradient). One process: ``x``.
    """
    _, size = world()
    if size == 1:
        return x
    if x.shape[0] % blocks:
        raise ValueError(
            f'gather_batch: {x.shape[0]} rows cannot be cut into {blocks} equal blocks'
        )
    gathered = all_gather_with_grad(x) if x.requires_grad else _gather_plain(x)
    per_rank = gathered.chunk(size)
    return torch.cat([part.chunk(blocks)[j] for j in range(blocks) for part in per_rank])


def _gather_plain(x: Tensor) -> Tensor:
    _, size = world()
    parts = [torch.empty_like(x) for _ in range(size)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)
