"""Re-ID retrieval metrics (CMC, mAP, mINP) for SYSU-MM01 and RegDB, vectorised with numpy.

Two layers:

* ``eval_sysu`` / ``eval_regdb``: drop-in replacements for AGW's ``eval_metrics.py`` (same names,
  argument order and return types: ``(cmc, mAP, mINP)`` with ``cmc`` a float32 array in [0, 1]).
* ``rank_matches`` (per-query arrays computed once), ``TrialMetrics`` / ``evaluate_sysu_trial`` /
  ``evaluate_regdb`` (one trial, percentages) and ``summarize`` -> ``ProtocolResult`` (mean/std over
  trials).

Semantics follow AGW's ``eval_metrics.py`` (docs/protocols.md, "Metrics"), with these documented
harness decisions:

* Ranking uses ``np.argsort(kind='stable')``: exact distance ties keep gallery order (as MATLAB's
  ``sort``). AGW uses the default (unstable) kind, so results can differ from AGW only when exact
  ties exist.
* SYSU camera rule: for a query from camera 3, every gallery entry from camera 2 is removed,
  whatever its identity. RegDB never removes anything.
* A query whose identity has no gallery entry left is invalid: it is excluded from CMC, mAP and mINP
  (AGW appends an all-zero unique-id CMC row for it but divides by the valid count only: same
  numbers).
* If the gallery has fewer than ``max_rank`` entries, ``max_rank`` becomes the gallery size. If a
  query has fewer distinct identities than ``max_rank`` (tiny galleries), its unique-id CMC keeps
  its last value for the remaining ranks; AGW's code would fail there building a ragged array.
* Everything is computed in float64; only the legacy ``cmc`` is returned as float32, like AGW.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# SYSU-MM01: cam3 (IR) shares its room with cam2 (RGB), so cam3 queries never see cam2 gallery
# images.
SYSU_SAME_ROOM_QUERY_CAM = 3
SYSU_SAME_ROOM_GALLERY_CAM = 2

DEFAULT_MAX_RANK = 20
# Keys of ``ProtocolResult.mean``/``std`` and of the per-trial dicts, in report order.
METRIC_KEYS = ('R1', 'R5', 'R10', 'R20', 'mAP', 'mINP')
# What VI-ReID papers publish (and the run logs): Rank-5 is computed but rarely reported.
REPORTED_METRIC_KEYS = ('R1', 'R10', 'R20', 'mAP', 'mINP')
DISTANCE_METRICS = ('cosine', 'euclidean', 'inner_product')


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
                'the gallery (after the SYSU cam3/cam2 rule, if used); check that q_pids and '
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


def rank_matches(
    distmat: Any, q_pids: Any, g_pids: Any, q_camids: Any = None, g_camids: Any = None
) -> QueryRanks:
    """Rank the gallery for every query at once and return per-query match statistics.

    ``distmat``: (num_query, num_gallery), smaller = closer. With ``q_camids``/``g_camids`` the SYSU
    camera rule is applied (query cam 3 drops every gallery cam 2 entry); without them nothing is
    removed (RegDB). Computed by :func:`protocols.ranking.rank_gallery` (a value sort and a look-up
    per correct match); the results are those of :func:`rank_matches_sorted`.
    """
    from protocols.ranking import rank_gallery  # ranking builds on this module

    return rank_gallery(distmat, q_pids, g_pids, q_camids, g_camids)


def rank_matches_sorted(
    distmat: Any, q_pids: Any, g_pids: Any, q_camids: Any = None, g_camids: Any = None
) -> QueryRanks:
    """:func:`rank_matches` computed from the stably sorted gallery of every query (the reference).

    ``distmat``: (num_query, num_gallery), smaller = closer. With ``q_camids``/``g_camids`` the SYSU
    camera rule is applied (query cam 3 drops every gallery cam 2 entry); without them nothing is
    removed (RegDB).
    """
    dist, q_pids, g_pids, q_cams, g_cams = _check_inputs(
        distmat, q_pids, g_pids, q_camids, g_camids
    )
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
        keep = ~(
            (q_cams == SYSU_SAME_ROOM_QUERY_CAM)[:, None]
            & (g_cams[order] == SYSU_SAME_ROOM_GALLERY_CAM)
        )
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


# --------------------------------------------------------------------------------------------------
# AGW-compatible API


def _legacy(ranks: QueryRanks, max_rank: int, unique: bool) -> tuple[np.ndarray, float, float]:
    n = ranks._require_valid()
    # Integer counts divided in float32, exactly as AGW's float32 sum / num_valid_q.
    cmc = ranks.cmc_counts(max_rank, unique).astype(np.float32) / np.float32(n)
    return cmc, np.float64(ranks.mean_ap()), np.float64(ranks.mean_inp())


def eval_sysu(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    max_rank: int = DEFAULT_MAX_RANK,
) -> tuple[np.ndarray, float, float]:
    """SYSU-MM01 metrics like AGW ``eval_sysu``: (unique-id CMC float32[max_rank], mAP, mINP), all
    in [0, 1]."""
    ranks = rank_matches(distmat, q_pids, g_pids, q_camids, g_camids)
    return _legacy(ranks, max_rank, unique=True)


def eval_regdb(
    distmat: Any, q_pids: Any, g_pids: Any, max_rank: int = DEFAULT_MAX_RANK
) -> tuple[np.ndarray, float, float]:
    """RegDB metrics like AGW ``eval_regdb``: (position CMC float32[max_rank], mAP, mINP), all in
    [0, 1]."""
    ranks = rank_matches(distmat, q_pids, g_pids)
    return _legacy(ranks, max_rank, unique=False)


# --------------------------------------------------------------------------------------------------
# Typed results


@dataclass(frozen=True)
class TrialMetrics:
    """Metrics of one trial, in percent. R10/R20 fall back to the last rank when the gallery is
    tiny."""

    r1: float
    r5: float
    r10: float
    r20: float
    mAP: float
    mINP: float
    cmc: tuple[float, ...]
    n_valid_queries: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            'R1': self.r1,
            'R5': self.r5,
            'R10': self.r10,
            'R20': self.r20,
            'mAP': self.mAP,
            'mINP': self.mINP,
            'n_valid_queries': self.n_valid_queries,
        }


def _at_rank(cmc: np.ndarray, k: int) -> float:
    return float(cmc[min(k, cmc.size) - 1])


def trial_metrics(
    ranks: QueryRanks, max_rank: int = DEFAULT_MAX_RANK, unique: bool = True
) -> TrialMetrics:
    """Percent metrics of one trial from per-query ranks (unique-id CMC for SYSU, position CMC for
    RegDB)."""
    cmc = ranks.cmc(max_rank, unique) * 100.0
    return TrialMetrics(
        r1=_at_rank(cmc, 1),
        r5=_at_rank(cmc, 5),
        r10=_at_rank(cmc, 10),
        r20=_at_rank(cmc, 20),
        mAP=ranks.mean_ap() * 100.0,
        mINP=ranks.mean_inp() * 100.0,
        cmc=tuple(float(v) for v in cmc),
        n_valid_queries=ranks.n_valid,
    )


def evaluate_sysu_trial(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    max_rank: int = DEFAULT_MAX_RANK,
) -> TrialMetrics:
    """One SYSU-MM01 trial (camera rule, unique-id CMC), in percent."""
    return trial_metrics(
        rank_matches(distmat, q_pids, g_pids, q_camids, g_camids), max_rank, unique=True
    )


def evaluate_regdb(
    distmat: Any, q_pids: Any, g_pids: Any, max_rank: int = DEFAULT_MAX_RANK
) -> TrialMetrics:
    """One RegDB split (no camera rule, position-based CMC), in percent."""
    return trial_metrics(rank_matches(distmat, q_pids, g_pids), max_rank, unique=False)


@dataclass(frozen=True)
class ProtocolResult:
    """Trials of one protocol setting with their arithmetic mean and population std (ddof=0)."""

    per_trial: tuple[TrialMetrics, ...]
    mean: dict[str, float]
    std: dict[str, float]
    cmc_mean: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: {per_trial: [...], mean: {...}, std: {...}, cmc: [...]}."""
        return {
            'per_trial': [t.as_dict() for t in self.per_trial],
            'mean': dict(self.mean),
            'std': dict(self.std),
            'cmc': list(self.cmc_mean),
        }


def summarize(trials: Sequence[TrialMetrics]) -> ProtocolResult:
    """Mean and population std (ddof=0, i.e. over the trials actually run) of each metric; CMC
    elementwise mean."""
    trials = tuple(trials)
    if not trials:
        raise ValueError('summarize() needs at least one TrialMetrics; got an empty sequence')
    lengths = {len(t.cmc) for t in trials}
    if len(lengths) != 1:
        raise ValueError(
            f'trials have CMC curves of different lengths {sorted(lengths)}; '
            f'evaluate every trial with the same max_rank and gallery size class'
        )
    table = np.array([[t.as_dict()[k] for k in METRIC_KEYS] for t in trials], dtype=np.float64)
    mean = {k: float(v) for k, v in zip(METRIC_KEYS, table.mean(axis=0))}
    std = {k: float(v) for k, v in zip(METRIC_KEYS, table.std(axis=0, ddof=0))}
    cmc_mean = tuple(float(v) for v in np.mean([t.cmc for t in trials], axis=0))
    return ProtocolResult(per_trial=trials, mean=mean, std=std, cmc_mean=cmc_mean)


# --------------------------------------------------------------------------------------------------
# Distances


def pairwise_distance(query: np.ndarray, gallery: np.ndarray, metric: str = 'cosine') -> np.ndarray:
    """Query x gallery distance matrix in float64 (smaller = closer).

    ``'cosine'``: 1 - cosine similarity of L2-normalised rows (ranks like AGW's ``-q @ g.T`` on
    normalised features). ``'euclidean'``: squared Euclidean distance on the raw features (MPANet's
    RegDB path). ``'inner_product'``: ``-q @ g.T`` on the raw features (DEEN ranks the sum of
    several inner products of unnormalised features, which is one inner product of their
    concatenation).
    """
    if metric not in DISTANCE_METRICS:
        raise ValueError(
            f'unknown distance metric {metric!r}; choose one of {", ".join(DISTANCE_METRICS)}'
        )
    q = np.asarray(query, dtype=np.float64)
    g = np.asarray(gallery, dtype=np.float64)
    if q.ndim != 2 or g.ndim != 2:
        raise ValueError(
            f'query and gallery must be 2-D (rows = samples), got shapes {q.shape} and {g.shape}'
        )
    if q.shape[1] != g.shape[1]:
        raise ValueError(
            f'feature dimensions differ: query has {q.shape[1]}, gallery has {g.shape[1]}'
        )
    gram = q @ g.T
    q_sq = np.einsum('ij,ij->i', q, q)
    g_sq = np.einsum('ij,ij->i', g, g)
    if metric == 'cosine':
        # Scaling the (num_q x num_g) product is cheaper than normalising the (n x dim) features
        # first. Zero rows keep a zero similarity (distance 1 to everything) instead of producing
        # NaN.
        q_inv = 1.0 / np.maximum(np.sqrt(q_sq), 1e-12)
        g_inv = 1.0 / np.maximum(np.sqrt(g_sq), 1e-12)
        gram *= q_inv[:, None]
        gram *= g_inv[None, :]
        return 1.0 - gram
    if metric == 'inner_product':
        return -gram
    sq = q_sq[:, None] + g_sq[None, :] - 2.0 * gram
    return np.maximum(sq, 0.0)  # rounding can make identical rows slightly negative
