"""The evaluation on the features' own device (torch): distances, ranking and per-query metrics.

Used when features arrive as torch tensors (e.g. still on the GPU after extraction), so nothing is
copied to the host but the per-query results (a few numbers per query). The ranking is the sorting
one of :func:`protocols.metrics.rank_matches_sorted`, vectorised for an accelerator: a stable sort
of each gallery (equal distances keep gallery order), the camera rule (SYSU cam3/cam2, or LLCM
same identity and camera) as a mask, the unique-id CMC from a scatter over identities. Distances
are computed in float64 like the host path, so both rank alike up to the last bits of the matrix
products.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from protocols.metrics import (
    DISTANCE_METRICS,
    SYSU_SAME_ROOM_GALLERY_CAM,
    SYSU_SAME_ROOM_QUERY_CAM,
    QueryRanks,
    check_camera_rule,
)
from protocols.ranking import _identity_codes


def pairwise_distance(query: Tensor, gallery: Tensor, metric: str = 'cosine') -> Tensor:
    """:func:`protocols.metrics.pairwise_distance` on the tensors' device, in float64."""
    if metric not in DISTANCE_METRICS:
        raise ValueError(
            f'unknown distance metric {metric!r}; choose one of {", ".join(DISTANCE_METRICS)}'
        )
    if query.ndim != 2 or gallery.ndim != 2:
        raise ValueError(
            f'query and gallery must be 2-D (rows = samples), got shapes '
            f'{tuple(query.shape)} and {tuple(gallery.shape)}'
        )
    if query.shape[1] != gallery.shape[1]:
        raise ValueError(
            f'feature dimensions differ: query has {query.shape[1]}, gallery has {gallery.shape[1]}'
        )
    q = query.to(torch.float64)
    g = gallery.to(torch.float64)
    gram = q @ g.T
    q_sq = (q * q).sum(dim=1)
    g_sq = (g * g).sum(dim=1)
    if metric == 'cosine':
        gram *= (1.0 / q_sq.sqrt().clamp_min(1e-12))[:, None]
        gram *= (1.0 / g_sq.sqrt().clamp_min(1e-12))[None, :]
        return 1.0 - gram
    if metric == 'inner_product':
        return -gram
    return (q_sq[:, None] + g_sq[None, :] - 2.0 * gram).clamp_min(0.0)


def _labels(values: Any, length: int, name: str) -> np.ndarray:
    arr = values.detach().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values)
    if arr.shape != (length,):
        side = 'row' if name.startswith('q') else 'column'
        raise ValueError(
            f'{name} must hold one label per {side} of distmat ({length}), got shape {arr.shape}'
        )
    return arr


class DevicePool:
    """Distances of every query to every candidate on one device; :meth:`ranks` scores any gallery.

    The device twin of :class:`protocols.ranking.CandidatePool` (same arguments, same results).
    """

    def __init__(
        self,
        distmat: Tensor,
        q_pids: Any,
        c_pids: Any,
        q_cams: Any = None,
        c_cams: Any = None,
        camera_rule: str = 'sysu',
    ) -> None:
        check_camera_rule(camera_rule)
        if not isinstance(distmat, Tensor) or distmat.ndim != 2:
            raise ValueError('distmat must be a 2-D torch tensor (num_query x num_candidates)')
        num_q, num_c = distmat.shape
        if num_q == 0 or num_c == 0:
            raise ValueError(
                f'distmat is empty (shape {tuple(distmat.shape)}); need at least one '
                f'query and one gallery item'
            )
        if torch.isnan(distmat).any():
            raise ValueError(
                'distmat contains NaN; NaN distances have no rank (check the features '
                'for NaN/zero rows)'
            )
        if (q_cams is None) != (c_cams is None):
            raise ValueError('pass both q_camids and g_camids, or neither')
        device = distmat.device
        self.dist, self.num_q, self.num_c, self.device = distmat, num_q, num_c, device
        q_codes, c_codes, self.n_ids = _identity_codes(
            _labels(q_pids, num_q, 'q_pids'), _labels(c_pids, num_c, 'g_pids')
        )
        self.q_codes = torch.as_tensor(q_codes, device=device)
        self.c_codes = torch.as_tensor(c_codes, device=device)
        # SYSU: per-query and per-candidate flags; LLCM: the cameras themselves (the rule also
        # needs the identity).
        self.llcm = camera_rule == 'llcm'
        self.q_rule = self.c_drop = None
        if q_cams is not None:
            q_cams = _labels(q_cams, num_q, 'q_camids')
            c_cams = _labels(c_cams, num_c, 'g_camids')
            if self.llcm:
                self.q_rule = torch.as_tensor(q_cams.astype(np.int64), device=device)
                self.c_drop = torch.as_tensor(c_cams.astype(np.int64), device=device)
            else:
                self.q_rule = torch.as_tensor(q_cams == SYSU_SAME_ROOM_QUERY_CAM, device=device)
                self.c_drop = torch.as_tensor(c_cams == SYSU_SAME_ROOM_GALLERY_CAM, device=device)

    def ranks(self, members: Sequence[int] | np.ndarray | Tensor | None = None) -> QueryRanks:
        """Per-query results for the gallery of candidates ``members`` (in gallery order; None:
        every candidate)."""
        if members is None:
            dist, codes, drop = self.dist, self.c_codes, self.c_drop
        else:
            if not isinstance(members, Tensor):
                members = np.asarray(members, dtype=np.int64)
            index = torch.as_tensor(members, device=self.device).reshape(-1)
            if index.numel() == 0:
                raise ValueError('a gallery needs at least one candidate')
            if int(index.min()) < 0 or int(index.max()) >= self.num_c:
                raise ValueError(
                    f'gallery indices must lie in 0..{self.num_c - 1} (the candidate pool)'
                )
            dist, codes = self.dist.index_select(1, index), self.c_codes[index]
            drop = None if self.c_drop is None else self.c_drop[index]
        out = _rank_sorted(dist, self.q_codes, codes, self.n_ids, self.q_rule, drop, self.llcm)
        host = {k: v.cpu().numpy() for k, v in out.items()}
        return QueryRanks(num_gallery=int(dist.shape[1]), **host)


def _rank_sorted(
    dist: Tensor,
    q_codes: Tensor,
    g_codes: Tensor,
    n_ids: int,
    q_rule: Tensor | None,
    g_drop: Tensor | None,
    llcm: bool = False,
) -> dict[str, Tensor]:
    """Per-query results from the stably sorted gallery (see the module docstring).

    ``q_rule``/``g_drop``: SYSU flags (query cam 3, candidate cam 2), or with ``llcm`` the query and
    candidate cameras."""
    num_q, num_g = dist.shape
    order = torch.sort(dist, dim=1, stable=True).indices
    ranked_codes = g_codes[order]
    positions = torch.arange(1, num_g + 1, device=dist.device)
    if q_rule is None:
        keep = None
        kept_rank = positions.expand(num_q, num_g)
    else:
        if llcm:
            keep = ~((ranked_codes == q_codes[:, None]) & (g_drop[order] == q_rule[:, None]))
        else:
            keep = ~(q_rule[:, None] & g_drop[order])
        kept_rank = keep.cumsum(dim=1)
    match = ranked_codes == q_codes[:, None]
    if keep is not None:
        match &= keep
    kth = match.cumsum(dim=1)
    n_pos = kth[:, -1]
    valid = n_pos > 0
    safe_rank = kept_rank.clamp_min(1).to(torch.float64)
    zero_f = torch.zeros((), dtype=torch.float64, device=dist.device)
    precision = torch.where(match, kth.to(torch.float64) / safe_rank, zero_f)
    nan = torch.full((num_q,), float('nan'), dtype=torch.float64, device=dist.device)
    n_float = n_pos.to(torch.float64)
    ap = torch.where(valid, precision.sum(dim=1) / n_float.clamp_min(1), nan)
    first = match.to(torch.int8).argmax(dim=1)  # first correct position
    last = (match * positions).argmax(dim=1)  # last correct position
    rows = torch.arange(num_q, device=dist.device)
    inp = torch.where(valid, n_float / safe_rank[rows, last], nan)
    zero = torch.zeros((), dtype=torch.int64, device=dist.device)
    first_rank = torch.where(valid, kept_rank[rows, first].to(torch.int64), zero)
    # Distinct (kept) identities ranked before the first correct match.
    before = positions[None, :] <= first[:, None]  # positions are 1-based
    if keep is not None:
        before &= keep
    seen = torch.zeros((num_q, n_ids + 1), dtype=torch.bool, device=dist.device)
    seen.scatter_(1, torch.where(before, ranked_codes, n_ids), True)
    first_unique = torch.where(valid, seen[:, :n_ids].sum(dim=1) + 1, zero)
    return dict(
        valid=valid,
        first_rank=first_rank,
        first_unique_rank=first_unique,
        ap=ap,
        inp=inp,
        n_positives=n_pos.to(torch.int64),
    )


def rank_gallery(
    distmat: Tensor,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any = None,
    g_camids: Any = None,
    camera_rule: str = 'sysu',
) -> QueryRanks:
    """:func:`protocols.metrics.rank_matches` on the device of ``distmat``."""
    return DevicePool(distmat, q_pids, g_pids, q_camids, g_camids, camera_rule).ranks()
