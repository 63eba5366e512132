"""Re-ID retrieval metrics (CMC, mAP, mINP) for SYSU-MM01, RegDB and LLCM, vectorised with numpy.

Two layers:

* ``eval_sysu`` / ``eval_regdb`` / ``eval_llcm``: drop-in replacements for AGW's
  ``eval_metrics.py`` and DEEN's ``eval_llcm`` (same names, argument order and return types:
  ``(cmc, mAP, mINP)`` with ``cmc`` a float32 array in [0, 1]).
* ``rank_matches`` (per-query arrays computed once, :class:`~protocols.query_ranks.QueryRanks`:
  by :mod:`protocols.ranking`, equal to the sorting reference in :mod:`protocols.query_ranks`),
  ``TrialMetrics`` / ``evaluate_sysu_trial`` /
  ``evaluate_regdb`` / ``evaluate_llcm_trial`` (one trial, percentages) and ``summarize`` ->
  ``ProtocolResult`` (mean/std over trials).

Semantics follow AGW's ``eval_metrics.py`` (docs/protocols.md, "Metrics"), with these documented
harness decisions:

* Ranking uses ``np.argsort(kind='stable')``: exact distance ties keep gallery order (as MATLAB's
  ``sort``). AGW uses the default (unstable) kind, so results can differ from AGW only when exact
  ties exist.
* Camera rules (``camera_rule``, used when cameras are given): ``'sysu'``: for a query from camera
  3, every gallery entry from camera 2 is removed, whatever its identity. ``'llcm'``
  (ZYK100/LLCM ``DEEN/eval_metrics.py`` ``eval_llcm``): every gallery entry of the query's own
  identity *and* camera number is removed (camera numbers are shared by both modalities). RegDB
  never removes anything.
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

from protocols.query_ranks import (  # noqa: F401  (also this module's public names)
    CAMERA_RULES,
    DEFAULT_MAX_RANK,
    SYSU_SAME_ROOM_GALLERY_CAM,
    SYSU_SAME_ROOM_QUERY_CAM,
    QueryRanks,
    check_camera_rule,
    rank_matches_sorted,
    removed_by_rule,
)
from protocols.ranking import rank_gallery

# Keys of ``ProtocolResult.mean``/``std`` and of the per-trial dicts, in report order.
METRIC_KEYS = ('R1', 'R5', 'R10', 'R20', 'mAP', 'mINP')
# What VI-ReID papers publish (and the run logs): Rank-5 is computed but rarely reported.
REPORTED_METRIC_KEYS = ('R1', 'R10', 'R20', 'mAP', 'mINP')
DISTANCE_METRICS = ('cosine', 'euclidean', 'inner_product')


def rank_matches(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any = None,
    g_camids: Any = None,
    camera_rule: str = 'sysu',
) -> QueryRanks:
    """Rank the gallery for every query at once and return per-query match statistics.

    ``distmat``: (num_query, num_gallery), smaller = closer. With ``q_camids``/``g_camids`` the
    ``camera_rule`` is applied ('sysu': query cam 3 drops every gallery cam 2 entry; 'llcm': a query
    drops the entries of its own identity and camera); without them nothing is removed (RegDB).
    Computed by :func:`protocols.ranking.rank_gallery` (a value sort and a look-up per correct
    match); the results are those of :func:`rank_matches_sorted`.
    """
    return rank_gallery(distmat, q_pids, g_pids, q_camids, g_camids, camera_rule=camera_rule)


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


def eval_llcm(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    max_rank: int = DEFAULT_MAX_RANK,
) -> tuple[np.ndarray, float, float]:
    """LLCM metrics like DEEN's ``eval_llcm`` (ZYK100/LLCM ``DEEN/eval_metrics.py:6-84``): entries
    of the query's identity and camera removed; (unique-id CMC float32[max_rank], mAP, mINP), all in
    [0, 1]."""
    ranks = rank_matches(distmat, q_pids, g_pids, q_camids, g_camids, camera_rule='llcm')
    return _legacy(ranks, max_rank, unique=True)


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


def evaluate_llcm_trial(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    max_rank: int = DEFAULT_MAX_RANK,
) -> TrialMetrics:
    """One LLCM trial (same identity-and-camera removal, unique-id CMC), in percent."""
    ranks = rank_matches(distmat, q_pids, g_pids, q_camids, g_camids, camera_rule='llcm')
    return trial_metrics(ranks, max_rank, unique=True)


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
