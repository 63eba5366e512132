"""Per-query retrieval results (:class:`QueryRanks`) and their reference computation from a
stably sorted gallery (:func:`rank_matches_sorted`), with the input checks every ranking shares.

:mod:`protocols.ranking` computes the same results faster and :mod:`protocols.metrics` turns them
into CMC, mAP and mINP; both build on this module. The semantic decisions (stable ties, the camera
rules, invalid queries, small galleries) are documented at the top of
:mod:`protocols.metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# SYSU-MM01: cam3 (IR) shares its room with cam2 (RGB), so cam3 queries never see cam2 gallery
# images.
SYSU_SAME_ROOM_QUERY_CAM = 3
SYSU_SAME_ROOM_GALLERY_CAM = 2

# Which gallery entries a query with cameras given does not see: 'sysu' the rule above; 'llcm' the
# entries of its own identity seen by its own camera number (DEEN eval_metrics.py:31-33).
CAMERA_RULES = ('sysu', 'llcm')

DEFAULT_MAX_RANK = 20


# --------------------------------------------------------------------------------------------------
# Input checks


def _as_1d(name: str, values: Any, length: int, length_name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(
            f'{name} must be a 1-D array, got shape {arr.shape}; pass one label per row/column'
        )
    if arr.shape[0] != length:
        raise ValueError(
            f'{name} has {arr.shape[0]} entries but distmat has {length} {length_name}; '
            f'labels must align with distmat (num_query x num_gallery)'
        )
    return arr


def _check_inputs(
    distmat: Any, q_pids: Any, g_pids: Any, q_camids: Any = None, g_camids: Any = None
) -> tuple[np.ndarray, ...]:
    dist = np.asarray(distmat, dtype=np.float64)
    if dist.ndim != 2:
        raise ValueError(f'distmat must be 2-D (num_query x num_gallery), got shape {dist.shape}')
    num_q, num_g = dist.shape
    if num_q == 0 or num_g == 0:
        raise ValueError(
            f'distmat is empty (shape {dist.shape}); need at least one query and one gallery item'
        )
    if np.isnan(dist).any():
        raise ValueError(
            'distmat contains NaN; NaN distances have no rank (check the features for NaN/zero '
            'rows)'
        )
    q = _as_1d('q_pids', q_pids, num_q, 'rows')
    g = _as_1d('g_pids', g_pids, num_g, 'columns')
    if (q_camids is None) != (g_camids is None):
        raise ValueError('pass both q_camids and g_camids, or neither')
    if q_camids is None:
        return dist, q, g, None, None
    qc = _as_1d('q_camids', q_camids, num_q, 'rows')
    gc = _as_1d('g_camids', g_camids, num_g, 'columns')
    return dist, q, g, qc, gc


def _effective_max_rank(max_rank: int, num_g: int) -> int:
    if int(max_rank) < 1:
        raise ValueError(f'max_rank must be >= 1, got {max_rank}')
    return min(int(max_rank), num_g)


def check_camera_rule(rule: str) -> str:
    if rule not in CAMERA_RULES:
        raise ValueError(f'camera_rule must be one of {CAMERA_RULES}, got {rule!r}')
    return rule


def removed_by_rule(rule: str, q_pids: Any, q_cams: Any, g_pids: Any, g_cams: Any) -> np.ndarray:
    """(num_q, num_g) bool: gallery entries that ``rule`` removes from each query's list."""
    q_pids, q_cams = np.asarray(q_pids)[:, None], np.asarray(q_cams)[:, None]
    g_pids, g_cams = np.asarray(g_pids)[None, :], np.asarray(g_cams)[None, :]
    if check_camera_rule(rule) == 'llcm':
        return (g_pids == q_pids) & (g_cams == q_cams)
    return (q_cams == SYSU_SAME_ROOM_QUERY_CAM) & (g_cams == SYSU_SAME_ROOM_GALLERY_CAM)


# --------------------------------------------------------------------------------------------------
# Per-query arrays


@dataclass(frozen=True)
class QueryRanks:
    """Per-query retrieval results of one distance matrix (arrays of length num_query).

    Ranks are 1-based positions in the query's gallery list after the camera rule; 0 means
    "no match".
    ``ap``/``inp`` are NaN for invalid queries (no match left in the gallery).
    """

    valid: np.ndarray  # bool: the query identity is present in its filtered gallery
    first_rank: np.ndarray  # int64: rank of the first correct match (standard CMC)
    first_unique_rank: np.ndarray  # int64: rank of the query id among distinct ids, in ranked order
    ap: np.ndarray  # float64: average precision
    inp: np.ndarray  # float64: inverse negative penalty = n_positives / rank of last positive
    n_positives: np.ndarray  # int64: correct matches left after the camera rule
    num_gallery: int  # gallery size before the camera rule

    @property
    def n_valid(self) -> int:
        return int(self.valid.sum())

    def _require_valid(self) -> int:
        n = self.n_valid
        if n == 0:
            raise ValueError(
                f'no valid query: none of the {self.valid.size} query identities has a match in '
                'the gallery (after the camera rule, if used); check that q_pids and '
                'g_pids use the same labels and that the gallery holds the query identities'
            )
        return n

    def cmc_counts(self, max_rank: int, unique: bool) -> np.ndarray:
        """Number of valid queries matched within rank k, k = 1..max_rank (max_rank capped at
        gallery size)."""
        max_rank = _effective_max_rank(max_rank, self.num_gallery)
        rank = (self.first_unique_rank if unique else self.first_rank)[self.valid]
        hits = np.bincount(rank, minlength=max_rank + 1)[1 : max_rank + 1]
        return np.cumsum(hits)

    def cmc(self, max_rank: int = DEFAULT_MAX_RANK, unique: bool = True) -> np.ndarray:
        """CMC in [0, 1] (float64) over valid queries: unique-id CMC (SYSU) or position-based
        (RegDB)."""
        n = self._require_valid()
        return self.cmc_counts(max_rank, unique) / n

    def mean_ap(self) -> float:
        self._require_valid()
        return float(np.mean(self.ap[self.valid]))

    def mean_inp(self) -> float:
        self._require_valid()
        return float(np.mean(self.inp[self.valid]))

    def subset(self, rows: Any) -> QueryRanks:
        """The results of the queries ``rows`` (indices, in the order given), same gallery."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        return QueryRanks(
            valid=self.valid[rows],
            first_rank=self.first_rank[rows],
            first_unique_rank=self.first_unique_rank[rows],
            ap=self.ap[rows],
            inp=self.inp[rows],
            n_positives=self.n_positives[rows],
            num_gallery=self.num_gallery,
        )


def _stable_argsort_rows(dist: np.ndarray) -> np.ndarray:
    """Row-wise ``argsort(kind='stable')``, about twice as fast when ties are rare.

    A row without equal values has exactly one sorted order, so the faster unstable sort is used
    first and only rows that turn out to contain ties are sorted again with the stable kind.
    """
    order = np.argsort(dist, axis=1)
    ranked = np.take_along_axis(dist, order, axis=1)
    tied = (ranked[:, 1:] == ranked[:, :-1]).any(axis=1)
    if tied.any():
        order[tied] = np.argsort(dist[tied], axis=1, kind='stable')
    return order


def rank_matches_sorted(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any = None,
    g_camids: Any = None,
    camera_rule: str = 'sysu',
) -> QueryRanks:
    """:func:`rank_matches` computed from the stably sorted gallery of every query (the reference).

    ``distmat``: (num_query, num_gallery), smaller = closer. With ``q_camids``/``g_camids`` the
    ``camera_rule`` is applied (see :func:`rank_matches`); without them nothing is removed (RegDB).
    """
    dist, q_pids, g_pids, q_cams, g_cams = _check_inputs(
        distmat, q_pids, g_pids, q_camids, g_camids
    )
    check_camera_rule(camera_rule)
    num_q, num_g = dist.shape
    order = _stable_argsort_rows(dist)

    # Identity codes 0..n_ids-1 for the gallery; a query id absent from the gallery gets code -1.
    g_ids, g_codes = np.unique(g_pids, return_inverse=True)
    g_codes = g_codes.reshape(-1)
    pos = np.searchsorted(g_ids, q_pids).clip(0, g_ids.size - 1)
    q_codes = np.where(g_ids[pos] == q_pids, pos, -1)

    ranked_codes = g_codes[order]
    if q_cams is None:
        keep = None
        kept_rank = None
    else:
        rows = np.arange(num_q)[:, None]
        keep = ~removed_by_rule(camera_rule, q_pids, q_cams, g_pids, g_cams)[rows, order]
        # 1-based rank of each kept entry in the filtered list.
        kept_rank = np.cumsum(keep, axis=1, dtype=np.int64)
    match = ranked_codes == q_codes[:, None]
    if keep is not None:
        match &= keep

    # Positives in row-major order: rows ascending, positions ascending within a row.
    rows, cols = np.nonzero(match)
    n_pos = np.bincount(rows, minlength=num_q)
    valid = n_pos > 0
    starts = np.concatenate(([0], np.cumsum(n_pos)[:-1]))
    kth = np.arange(rows.size) - starts[rows] + 1  # k-th positive of its row
    rank = cols + 1 if kept_rank is None else kept_rank[rows, cols]

    ap = np.full(num_q, np.nan)
    inp = np.full(num_q, np.nan)
    first_rank = np.zeros(num_q, dtype=np.int64)
    first_col = np.zeros(num_q, dtype=np.int64)
    if rows.size:
        precision_sum = np.bincount(rows, weights=kth / rank, minlength=num_q)
        ap[valid] = precision_sum[valid] / n_pos[valid]
        last = starts[valid] + n_pos[valid] - 1
        inp[valid] = n_pos[valid] / rank[last]
        first = starts[valid]
        first_rank[valid] = rank[first]
        first_col[valid] = cols[first]

    # Unique-id rank = 1 + number of distinct (kept) identities ranked before the first correct
    # match.
    before = np.arange(num_g)[None, :] < first_col[:, None]
    if keep is not None:
        before &= keep
    b_rows, b_cols = np.nonzero(before)
    seen = np.zeros((num_q, g_ids.size), dtype=bool)
    seen[b_rows, ranked_codes[b_rows, b_cols]] = True
    first_unique_rank = np.where(valid, seen.sum(axis=1) + 1, 0).astype(np.int64)

    return QueryRanks(
        valid=valid,
        first_rank=first_rank,
        first_unique_rank=first_unique_rank,
        ap=ap,
        inp=inp,
        n_positives=n_pos.astype(np.int64),
        num_gallery=num_g,
    )
