"""Ranked gallery lists of one protocol setting: what a query retrieves, for looking at results.

Built from the same pieces as the metrics (:func:`protocols.evaluation.evaluate`): the setting's
query and gallery from ``protocols.trials`` (a SYSU trial's gallery draw, a RegDB split and
direction, an LLCM direction and draw), one distance matrix over every candidate from
``pairwise_distance`` (rows and columns then selected, as the evaluation does), and the order of
``rank_matches``: a stable sort (exact ties keep gallery order) and the camera rule: for SYSU, no
camera-2 gallery image in the list of a camera-3 query; for LLCM, no image of the query's own
identity and camera. So rank k of a list here is rank k of the CMC, and the first correct match
sits at ``query_ranks().first_rank``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from protocols.datasets.base import ImageRecord, Modality
from protocols.evaluation import _SIDES, _needed, _open, _take, check_protocol, feature_rows
from protocols.metrics import (
    DISTANCE_METRICS,
    SYSU_SAME_ROOM_GALLERY_CAM,
    SYSU_SAME_ROOM_QUERY_CAM,
    QueryRanks,
    pairwise_distance,
    rank_matches,
)
from protocols.query_ranks import _stable_argsort_rows
from protocols.trials import (
    LLCM_NUM_TRIALS,
    LLCM_SETTINGS,
    REGDB_DIRECTIONS,
    SYSU_NUM_TRIALS,
    llcm_draw,
    load_rand_perm,
    sysu_galleries,
    sysu_setting,
)


@dataclass(frozen=True)
class RankedList:
    """One query's gallery, best first, after the camera rule (indices into the setting's)."""

    query: int
    gallery: np.ndarray  # int64 indices into RetrievalSetting.gallery
    distances: np.ndarray  # float64, ascending
    correct: np.ndarray  # bool: same identity as the query
    first_match: int  # 1-based rank of the first correct match in the whole list; 0: none


@dataclass(frozen=True)
class RetrievalSetting:
    """Query and gallery records of one setting with their distance matrix (query x gallery)."""

    dataset: str
    setting: str  # SYSU 'all-single', 'indoor-multi', ...; RegDB 'v2t' or 't2v'; LLCM direction
    trial: int  # SYSU and LLCM draw (0-based); RegDB split (1..10)
    distance: str
    query: tuple[ImageRecord, ...]
    gallery: tuple[ImageRecord, ...]
    distmat: np.ndarray

    def _labels(self) -> tuple[np.ndarray, ...]:
        return (
            np.array([r.pid for r in self.query]),
            np.array([r.pid for r in self.gallery]),
            np.array([r.cam for r in self.query]),
            np.array([r.cam for r in self.gallery]),
        )

    def query_ranks(self) -> QueryRanks:
        """The metrics' own per-query results (first correct rank, AP, validity) of this setting."""
        q_pids, g_pids, q_cams, g_cams = self._labels()
        if self.dataset in ('sysu', 'llcm'):
            rule = self.dataset
            return rank_matches(self.distmat, q_pids, g_pids, q_cams, g_cams, camera_rule=rule)
        return rank_matches(self.distmat, q_pids, g_pids)

    def ranked(self, queries: Sequence[int], topk: int | None = None) -> list[RankedList]:
        """Ranked lists of ``queries`` (indices into ``query``), cut to ``topk`` if given."""
        queries = [int(q) for q in queries]
        bad = [q for q in queries if not 0 <= q < len(self.query)]
        if bad:
            raise ValueError(f'query indices {bad} are out of range 0..{len(self.query) - 1}')
        if topk is not None and topk < 1:
            raise ValueError(f'topk must be >= 1, got {topk}')
        q_pids, g_pids, q_cams, g_cams = self._labels()
        dist = self.distmat[queries]
        order = _stable_argsort_rows(dist)
        out = []
        for row, q in enumerate(queries):
            ranked = order[row]
            if self.dataset == 'sysu' and q_cams[q] == SYSU_SAME_ROOM_QUERY_CAM:
                ranked = ranked[g_cams[ranked] != SYSU_SAME_ROOM_GALLERY_CAM]
            if self.dataset == 'llcm':
                ranked = ranked[(g_pids[ranked] != q_pids[q]) | (g_cams[ranked] != q_cams[q])]
            correct = g_pids[ranked] == q_pids[q]
            hits = np.flatnonzero(correct)
            first = int(hits[0]) + 1 if hits.size else 0
            if topk is not None:
                ranked, correct = ranked[:topk], correct[:topk]
            out.append(
                RankedList(
                    query=q,
                    gallery=ranked.astype(np.int64),
                    distances=dist[row, ranked],
                    correct=correct,
                    first_match=first,
                )
            )
        return out


def retrieval_setting(
    dataset: Any,
    root: str | Path | None,
    protocol: Mapping[str, Any] | None,
    records: Sequence[ImageRecord | str],
    features: Any,
    distance: str = 'cosine',
    *,
    mode: str = 'all',
    shots: int = 1,
    trial: int = 0,
    direction: str = 'v2t',
) -> RetrievalSetting:
    """One setting of ``protocol`` from the features of its test images (as for ``evaluate``).

    SYSU: search ``mode`` ('all'/'indoor'), gallery ``shots`` (1/10) and gallery ``trial`` (0-based)
    drawn by the protocol's sampler; RegDB: the protocol's split in ``direction`` ('v2t'/'t2v');
    LLCM: ``direction`` ('ir2vis', 'vis2ir', 'vis2ir-conventional') with draw ``trial`` (0-based).
    """
    name, ds = _open(dataset, root)
    p = check_protocol(name, protocol)
    if distance not in DISTANCE_METRICS:
        raise ValueError(f'distance must be one of {list(DISTANCE_METRICS)}, got {distance!r}')
    rows, feats = feature_rows(records, features)
    first, second = _needed(ds, p)
    dist = pairwise_distance(
        _take(rows, feats, first, _SIDES[name][0]),
        _take(rows, feats, second, _SIDES[name][1]),
        distance,
    )
    if name == 'llcm':
        return _llcm_setting(ds, first, second, dist, distance, direction, trial)
    if name == 'sysu':
        setting = sysu_setting(mode, shots)
        if isinstance(trial, bool) or not 0 <= int(trial) < SYSU_NUM_TRIALS:
            raise ValueError(
                f'SYSU gallery trial must be in 0..{SYSU_NUM_TRIALS - 1}, got {trial!r}'
            )
        perm = load_rand_perm(ds.rand_perm_path) if p['sampler'] == 'official' else None
        gallery = sysu_galleries(ds, mode, shots, p['sampler'], int(trial) + 1, perm)[int(trial)]
        return RetrievalSetting(
            name,
            setting,
            int(trial),
            distance,
            tuple(first),
            tuple(second[i] for i in gallery),
            dist[:, gallery],
        )
    if direction not in REGDB_DIRECTIONS:
        raise ValueError(f'RegDB direction must be one of {REGDB_DIRECTIONS}, got {direction!r}')
    if direction == 'v2t':
        return RetrievalSetting(
            name, direction, p['split'], distance, tuple(first), tuple(second), dist
        )
    return RetrievalSetting(
        name, direction, p['split'], distance, tuple(second), tuple(first), dist.T
    )


def _llcm_setting(
    ds: Any,
    infrared: list[ImageRecord],
    visible: list[ImageRecord],
    dist: np.ndarray,
    distance: str,
    direction: str,
    trial: int,
) -> RetrievalSetting:
    """One LLCM direction and draw from the infrared x visible distances (as the evaluation)."""
    if direction not in LLCM_SETTINGS:
        raise ValueError(f'LLCM direction must be one of {LLCM_SETTINGS}, got {direction!r}')
    if isinstance(trial, bool) or not 0 <= int(trial) < LLCM_NUM_TRIALS:
        raise ValueError(f'LLCM draw trial must be in 0..{LLCM_NUM_TRIALS - 1}, got {trial!r}')
    trial = int(trial)
    if direction == 'ir2vis':
        drawn = llcm_draw(ds, Modality.VISIBLE, trial, visible)
        query, gallery, d = infrared, [visible[i] for i in drawn], dist[:, drawn]
    elif direction == 'vis2ir':  # DEEN test.py: the sampled infrared images are the probes
        drawn = llcm_draw(ds, Modality.INFRARED, trial, infrared)
        query, gallery, d = [infrared[i] for i in drawn], visible, dist[drawn]
    else:
        drawn = llcm_draw(ds, Modality.INFRARED, trial, infrared)
        query, gallery, d = visible, [infrared[i] for i in drawn], dist[drawn].T
    return RetrievalSetting(
        'llcm', direction, trial, distance, tuple(query), tuple(gallery), np.ascontiguousarray(d)
    )
