"""Exact per-query retrieval results without the per-position bookkeeping of a full ranking.

What the metrics need from a ranked gallery is small: the rank of each correct match (mAP, mINP,
position CMC) and how many distinct wrong identities come before the first one (unique-id CMC).
Two ways to get them, both giving the results of :func:`protocols.metrics.rank_matches_sorted`:

* one gallery (:func:`rank_whole_gallery`): sort each query's distances (values only, the fast
  vectorised sort) and look the query's own-identity distances up in it;
* many galleries drawn from one candidate pool (:class:`CandidatePool`, every SYSU-MM01 trial): sort
  each query's distances to all candidates once and keep, per candidate, its *bucket*: how many of
  the query's positives are closer. A gallery then needs no sort: the rank of its j-th closest
  positive is the number of its negatives in buckets <= j plus the positives up to it, and a wrong
  identity precedes the first positive j0 when one of its gallery images lies in a bucket <= j0.

Ties follow the stable rule (equal distances keep gallery order) without sorting stably: the order
among equal negatives, or among equal positives, changes no metric. A query with a positive at
exactly the distance of a negative is recomputed by the sorting implementation (rare with real
features). The SYSU camera rule splits the queries into two groups: cam-3 queries are ranked
against the candidates without cam 2, the others against all of them. The LLCM rule removes only
entries of the query's own identity (those of its own camera), so it never changes which negatives
a query sees: those entries are simply neither positives nor negatives (:class:`_Hidden`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from protocols.query_ranks import (
    SYSU_SAME_ROOM_GALLERY_CAM,
    SYSU_SAME_ROOM_QUERY_CAM,
    QueryRanks,
    _check_inputs,
    check_camera_rule,
    rank_matches_sorted,
)

# Query rows handled at once (bounds the temporary arrays to ~ rows x candidates x 8 bytes).
_ROW_CHUNK = 512
# Below this gallery width one flat bincount beats a bincount per query row.
_FLAT_HISTOGRAM_MAX_WIDTH = 1024
_FIELDS = ('valid', 'first_rank', 'first_unique_rank', 'ap', 'inp', 'n_positives')


class _Hidden:
    """The LLCM rule for a group of queries: a candidate of the query's own identity seen by the
    query's own camera number is removed from its list (ZYK100/LLCM DEEN/eval_metrics.py:31-33).

    ``q_cams`` are the cameras of the group's query rows, ``c_cams`` those of its candidate columns.
    """

    def __init__(self, q_cams: np.ndarray, c_cams: np.ndarray) -> None:
        self.q_cams, self.c_cams = np.asarray(q_cams), np.asarray(c_cams)

    def rows(self, part: np.ndarray | slice) -> _Hidden:
        return _Hidden(self.q_cams[part], self.c_cams)

    def columns(self, cols: np.ndarray) -> _Hidden:
        return _Hidden(self.q_cams, self.c_cams[cols])

    def same_camera(self, cols: np.ndarray) -> np.ndarray:
        """(rows, k) bool: candidate ``cols[r, k]`` shares row r's camera (callers add: and its
        identity)."""
        return self.c_cams[cols] == self.q_cams[:, None]

    def sorted_ranks(
        self, dist: np.ndarray, q_codes: np.ndarray, c_codes: np.ndarray
    ) -> QueryRanks:
        """The sorting implementation for these rows and columns."""
        return rank_matches_sorted(
            dist, q_codes, c_codes, self.q_cams, self.c_cams, camera_rule='llcm'
        )


def _identity_codes(q_pids: np.ndarray, c_pids: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Identity codes 0..n-1 of the candidates; a query id absent from the candidates gets -1."""
    ids, c_codes = np.unique(c_pids, return_inverse=True)
    c_codes = c_codes.reshape(-1).astype(np.int64)
    if ids.size == 0:
        return np.full(q_pids.shape, -1, dtype=np.int64), c_codes, 0
    pos = np.searchsorted(ids, q_pids).clip(0, ids.size - 1)
    return np.where(ids[pos] == q_pids, pos, -1).astype(np.int64), c_codes, int(ids.size)


def _empty(num_q: int) -> dict[str, np.ndarray]:
    return dict(
        valid=np.zeros(num_q, dtype=bool),
        first_rank=np.zeros(num_q, dtype=np.int64),
        first_unique_rank=np.zeros(num_q, dtype=np.int64),
        ap=np.full(num_q, np.nan),
        inp=np.full(num_q, np.nan),
        n_positives=np.zeros(num_q, dtype=np.int64),
    )


def _from_ranks(
    rank: np.ndarray, in_gallery: np.ndarray, distinct_before: Any
) -> dict[str, np.ndarray]:
    """Per-query results from the ranks of each query's positives (in distance order).

    ``rank[q, j]``: 1-based rank of the j-th closest positive, used where ``in_gallery[q, j]``;
    ``distinct_before(first_j)``: distinct wrong identities ranked before positive ``first_j[q]``.
    """
    num_q, m = in_gallery.shape
    out = _empty(num_q)
    if m == 0:
        return out
    kth = np.cumsum(in_gallery, axis=1)
    n = kth[:, -1]
    valid = n > 0
    if not valid.any():
        return out
    rank = np.where(in_gallery, rank, 1)
    rows = np.arange(num_q)
    first_j = np.argmax(in_gallery, axis=1)
    last_j = m - 1 - np.argmax(in_gallery[:, ::-1], axis=1)
    # Summed one positive after another in rank order (bincount adds in sequence), as the sorting
    # implementation does: the same bits whichever pool or gallery the ranks came from.
    q_of, j_of = np.nonzero(in_gallery)
    precision = np.bincount(q_of, weights=kth[q_of, j_of] / rank[q_of, j_of], minlength=num_q)
    out['valid'] = valid
    out['n_positives'] = n.astype(np.int64)
    out['ap'][valid] = precision[valid] / n[valid]
    out['inp'][valid] = n[valid] / rank[rows, last_j][valid]
    out['first_rank'][valid] = rank[rows, first_j][valid]
    out['first_unique_rank'][valid] = distinct_before(first_j)[valid] + 1
    return out


def _distinct_ids(before: np.ndarray, codes: np.ndarray, n_ids: int) -> np.ndarray:
    """Per row, the number of identities with a True entry (columns labelled by ``codes``).

    Work grows with the True entries (the gallery images closer than the first correct match:
    few, for a useful model), plus one pass over the mask.
    """
    rows, cols = np.nonzero(before)
    seen = np.zeros((before.shape[0], n_ids), dtype=bool)
    seen[rows, codes[cols]] = True
    return seen.sum(axis=1)


# ------------------------------------------------------------------------------------------------
# One gallery


def _own_identity_columns(q_codes: np.ndarray, c_codes: np.ndarray, n_ids: int) -> np.ndarray:
    """(num_q, m) candidate columns of each query's identity, ascending; ``len(c_codes)`` pads."""
    counts = np.bincount(c_codes, minlength=n_ids)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    by_id = np.append(np.argsort(c_codes, kind='stable'), c_codes.size)
    own = np.where(q_codes >= 0, counts[q_codes.clip(0)], 0)
    j = np.arange(own.max(initial=0))[None, :]
    return by_id[np.where(j < own[:, None], starts[q_codes.clip(0)][:, None] + j, c_codes.size)]


def _block(dist: np.ndarray, rows: np.ndarray, cols: np.ndarray | None) -> np.ndarray:
    """``dist[rows][:, cols]`` (``cols`` None: every column).

    ``np.take`` copies far faster than fancy indexing.
    """
    block = np.take(dist, rows, axis=0)
    return block if cols is None else np.take(block, cols, axis=1)


def rank_whole_gallery(
    dist: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray | None,
    q_codes: np.ndarray,
    c_codes: np.ndarray,
    n_ids: int,
    hidden: _Hidden | None = None,
) -> dict[str, np.ndarray]:
    """Per-query results of queries ``rows`` against the gallery columns ``cols`` (None: all; not
    empty), with no camera rule but the LLCM one (``hidden``, for these rows and columns): a value
    sort and one look-up per positive."""
    out = _empty(rows.size)
    for start in range(0, rows.size, _ROW_CHUNK):
        part = slice(start, min(start + _ROW_CHUNK, rows.size))
        block = _block(dist, rows[part], cols)
        own_hidden = None if hidden is None else hidden.rows(part)
        result, tied = _whole_gallery_rows(block, q_codes[part], c_codes, n_ids, own_hidden)
        if tied.size:
            block = _block(dist, rows[part][tied], cols)
            if own_hidden is None:
                sub = rank_matches_sorted(block, q_codes[part][tied], c_codes)
            else:
                sub = own_hidden.rows(tied).sorted_ranks(block, q_codes[part][tied], c_codes)
            for key in _FIELDS:
                result[key][tied] = getattr(sub, key)
        for key in _FIELDS:
            out[key][part] = result[key]
    return out


def _whole_gallery_rows(
    dist: np.ndarray,
    q_codes: np.ndarray,
    c_codes: np.ndarray,
    n_ids: int,
    hidden: _Hidden | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Results of the rows of ``dist`` (sorted in place), and the rows to rank by sorting."""
    num_q, num_c = dist.shape
    columns = _own_identity_columns(q_codes, c_codes, n_ids)
    m = columns.shape[1]
    present = columns < num_c
    if hidden is not None and m:
        # Removed entries move behind every finite distance, where they precede nothing (a
        # positive at +inf ties with them and goes to the sorting implementation).
        removed = present & hidden.same_camera(columns.clip(0, num_c - 1))
        q_of, k_of = np.nonzero(removed)
        dist[q_of, columns[q_of, k_of]] = np.inf
        present &= ~removed
    values = np.where(present, np.take_along_axis(dist, columns.clip(0, num_c - 1), axis=1), np.inf)
    order = np.argsort(values, axis=1, kind='stable')  # absent slots (inf) stay after present
    values = np.take_along_axis(values, order, axis=1)
    present = np.take_along_axis(present, order, axis=1)
    first = values[:, 0] if m else np.full(num_q, -np.inf)
    before_first = dist < first[:, None]
    ranked = dist
    ranked.sort(axis=1)  # in place: ``dist`` is this chunk's own copy
    closer = np.zeros((num_q, m), dtype=np.int64)  # distances strictly below the positive's
    equal = np.zeros((num_q, m), dtype=np.int64)  # distances equal to it (itself included)
    counts = present.sum(axis=1)
    for q in np.flatnonzero(counts):
        n, row = counts[q], ranked[q]
        closer[q, :n] = row.searchsorted(values[q, :n], 'left')
        equal[q, :n] = row.searchsorted(values[q, :n], 'right') - closer[q, :n]
    # Positives at equal distances take consecutive ranks in any order; a negative at a positive's
    # distance would need the gallery order: such rows go to the sorting implementation.
    j = np.arange(m)[None, :]
    same_prev = np.zeros((num_q, m), dtype=bool)
    same_prev[:, 1:] = (values[:, 1:] == values[:, :-1]) & present[:, 1:]  # pads end a group
    same_next = np.zeros((num_q, m), dtype=bool)
    same_next[:, :-1] = same_prev[:, 1:]
    group_start = np.maximum.accumulate(np.where(same_prev, 0, j), axis=1)
    group_end = np.minimum.accumulate(np.where(same_next, m, j)[:, ::-1], axis=1)[:, ::-1]
    tied = (present & (equal != group_end - group_start + 1)).any(axis=1)
    rank = closer + (j - group_start) + 1
    out = _from_ranks(rank, present, lambda _j: _distinct_ids(before_first, c_codes, n_ids))
    return out, np.flatnonzero(tied)


# ------------------------------------------------------------------------------------------------
# Many galleries from one pool


class _Buckets:
    """Buckets of one query group against its candidates (no camera rule inside a group)."""

    def __init__(
        self,
        dist: np.ndarray,
        rows: np.ndarray,
        cols: np.ndarray | None,
        q_codes: np.ndarray,
        c_codes: np.ndarray,
        n_ids: int,
        hidden: _Hidden | None = None,
    ) -> None:
        self.dist, self.rows, self.cols = dist, rows, cols
        self.q_codes, self.c_codes, self.n_ids = q_codes, c_codes, n_ids
        self.hidden = hidden
        self.num_q, self.num_c = rows.size, c_codes.size
        counts = np.bincount(c_codes, minlength=n_ids)
        own = (
            np.where(q_codes >= 0, counts[q_codes.clip(0)], 0)
            if n_ids
            else np.zeros(self.num_q, np.int64)
        )
        self.m = m = int(own.max(initial=0))
        # Buckets run 0..m; positives (ranked by their own position) hold m + 1.
        self.sentinel = m + 1
        dtype = np.uint8 if self.sentinel <= np.iinfo(np.uint8).max else np.uint16
        self.buckets = np.empty((self.num_q, self.num_c), dtype=dtype)
        # Per query: its positives, closest first (candidate column; num_c pads).
        self.positives = np.full((self.num_q, m), self.num_c, dtype=np.int64)
        self.tied = np.zeros(self.num_q, dtype=bool)
        self._transposed: np.ndarray | None = None
        self._codes32 = c_codes.astype(np.int32)  # a narrower gather while sorting
        for start in range(0, self.num_q, _ROW_CHUNK):
            self._prepare(slice(start, min(start + _ROW_CHUNK, self.num_q)))

    def _distances(self, rows: np.ndarray | slice, cols: np.ndarray | None = None) -> np.ndarray:
        block = _block(self.dist, self.rows[rows], self.cols)
        return block if cols is None else np.take(block, cols, axis=1)

    def _prepare(self, rows: slice) -> None:
        dist = self._distances(rows)
        n_rows, num_c = dist.shape
        if num_c == 0:
            return
        # The unstable sort is enough: see the module docstring on ties.
        order = np.argsort(dist, axis=1)
        own = np.take(self._codes32, order) == self.q_codes[rows, None]
        is_pos = own
        if self.hidden is not None:  # removed: neither positive nor negative
            is_pos = own & ~self.hidden.rows(rows).same_camera(order)
        ranked_buckets = np.cumsum(is_pos, axis=1, dtype=self.buckets.dtype)  # values <= m fit
        ranked_buckets[own] = self.sentinel
        # Slices of a row range are views: the writes below land in the full arrays.
        self.buckets[rows][np.arange(n_rows)[:, None], order] = ranked_buckets
        p_rows, p_pos = np.nonzero(is_pos)
        if p_rows.size == 0:
            return
        kth = np.arange(p_rows.size) - np.searchsorted(p_rows, np.arange(n_rows))[p_rows]
        self.positives[rows][p_rows, kth] = order[p_rows, p_pos]
        # In a run of equal distances holding both kinds, a positive has a non-positive neighbour.
        value = dist[p_rows, order[p_rows, p_pos]]
        tied = np.zeros(p_rows.size, dtype=bool)
        for step in (-1, 1):
            nb = (p_pos + step).clip(0, num_c - 1)
            tied |= (nb != p_pos) & ~is_pos[p_rows, nb] & (dist[p_rows, order[p_rows, nb]] == value)
        self.tied[rows][p_rows[tied]] = True

    def _buckets_t(self) -> np.ndarray:
        """The buckets with candidates as rows (made once, on first use)."""
        if self._transposed is None:
            self._transposed = np.ascontiguousarray(self.buckets.T)
        return self._transposed

    def _negatives_up_to(self, buckets: np.ndarray) -> np.ndarray:
        """(num_q, m): gallery negatives in buckets 0..j, i.e. closer than the j-th positive."""
        num_q, width = buckets.shape
        bins = self.m + 2
        if width <= _FLAT_HISTOGRAM_MAX_WIDTH:
            flat = buckets.astype(np.intp) + (np.arange(num_q, dtype=np.intp) * bins)[:, None]
            hist = np.bincount(flat.ravel(), minlength=num_q * bins).reshape(num_q, bins)
        else:
            hist = np.empty((num_q, bins), dtype=np.intp)
            for q in range(num_q):
                hist[q] = np.bincount(buckets[q], minlength=bins)
        return np.cumsum(hist[:, : self.m], axis=1)

    def ranks(self, members: np.ndarray) -> dict[str, np.ndarray]:
        """Per-query results for the gallery of candidate columns ``members`` (in gallery order)."""
        if members.size == 0 or self.m == 0:
            return _empty(self.num_q)
        is_member = np.zeros(self.num_c + 1, dtype=bool)
        is_member[members] = True
        in_gallery = is_member[self.positives]
        gallery = np.take(self.buckets, members, axis=1)
        rank = self._negatives_up_to(gallery) + np.cumsum(in_gallery, axis=1)
        codes = self.c_codes[members]

        def distinct_before(first_j: np.ndarray) -> np.ndarray:
            # An identity precedes positive j0 when its lowest gallery bucket is <= j0. Candidates
            # as rows (the transposed buckets): one vectorised minimum per identity.
            by_id = members[np.argsort(codes, kind='stable')]
            sorted_codes = self.c_codes[by_id]
            starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
            lowest = np.minimum.reduceat(np.take(self._buckets_t(), by_id, axis=0), starts, axis=0)
            return (lowest <= first_j[None, :]).sum(axis=0)

        out = _from_ranks(rank, in_gallery, distinct_before)
        if self.tied.any():
            tied = np.flatnonzero(self.tied)
            dist = self._distances(tied, members)
            if self.hidden is None:
                sub = rank_matches_sorted(dist, self.q_codes[tied], codes)
            else:
                hidden = self.hidden.rows(tied).columns(members)
                sub = hidden.sorted_ranks(dist, self.q_codes[tied], codes)
            for key in _FIELDS:
                out[key][tied] = getattr(sub, key)
        return out


def _camera_groups(
    num_q: int, q_cams: np.ndarray | None, c_cams: np.ndarray | None, rule: str = 'sysu'
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(query rows, candidate columns they see or None for all) under the SYSU camera rule (the
    LLCM rule removes candidates per query, not per group: one group)."""
    if q_cams is None or check_camera_rule(rule) == 'llcm':
        return [(np.arange(num_q), None)]
    rule = q_cams == SYSU_SAME_ROOM_QUERY_CAM
    seen = np.flatnonzero(c_cams != SYSU_SAME_ROOM_GALLERY_CAM)
    groups = [(np.flatnonzero(~rule), None), (np.flatnonzero(rule), seen)]
    return [(rows, cols) for rows, cols in groups if rows.size]


def _hidden(rule: str, q_cams: np.ndarray | None, c_cams: np.ndarray | None) -> _Hidden | None:
    return _Hidden(q_cams, c_cams) if q_cams is not None and rule == 'llcm' else None


def rank_gallery(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any = None,
    g_camids: Any = None,
    camera_rule: str = 'sysu',
) -> QueryRanks:
    """:func:`protocols.metrics.rank_matches` for one gallery (see :func:`rank_whole_gallery`)."""
    dist, q_pids, g_pids, q_cams, g_cams = _check_inputs(
        distmat, q_pids, g_pids, q_camids, g_camids
    )
    q_codes, g_codes, n_ids = _identity_codes(q_pids, g_pids)
    hidden = _hidden(camera_rule, q_cams, g_cams)
    out = _empty(dist.shape[0])
    for rows, cols in _camera_groups(dist.shape[0], q_cams, g_cams, camera_rule):
        if cols is not None and cols.size == 0:
            continue
        codes = g_codes if cols is None else g_codes[cols]
        part = rank_whole_gallery(dist, rows, cols, q_codes[rows], codes, n_ids, hidden)
        for key in _FIELDS:
            out[key][rows] = part[key]
    return QueryRanks(num_gallery=dist.shape[1], **out)


class CandidatePool:
    """Every query ranked once against every candidate; :meth:`ranks` scores any gallery of them.

    ``q_cams``/``c_cams`` switch on the ``camera_rule``: 'sysu' (a cam-3 query never sees a cam-2
    candidate) or 'llcm' (a query never sees the candidates of its own identity and camera);
    without them nothing is removed (RegDB).
    """

    def __init__(
        self,
        distmat: Any,
        q_pids: Any,
        c_pids: Any,
        q_cams: Any = None,
        c_cams: Any = None,
        camera_rule: str = 'sysu',
    ) -> None:
        dist, q_pids, c_pids, q_cams, c_cams = _check_inputs(
            distmat, q_pids, c_pids, q_cams, c_cams
        )
        self.num_q, self.num_c = dist.shape
        q_codes, c_codes, n_ids = _identity_codes(q_pids, c_pids)
        hidden = _hidden(camera_rule, q_cams, c_cams)
        self._groups = []
        for rows, cols in _camera_groups(self.num_q, q_cams, c_cams, camera_rule):
            # Candidate index -> column of this group (-1: hidden by the camera rule).
            column = None
            if cols is not None:
                column = np.full(self.num_c, -1, dtype=np.int64)
                column[cols] = np.arange(cols.size)
            codes = c_codes if cols is None else c_codes[cols]
            buckets = _Buckets(dist, rows, cols, q_codes[rows], codes, n_ids, hidden)
            self._groups.append((rows, column, buckets))

    def ranks(self, members: Sequence[int] | np.ndarray | None = None) -> QueryRanks:
        """Per-query results for the gallery of candidates ``members`` (in gallery order; None:
        every candidate)."""
        if members is None:
            members = np.arange(self.num_c)
        members = np.asarray(members).reshape(-1)
        if members.size and not np.issubdtype(members.dtype, np.integer):
            raise ValueError(f'gallery indices must be integers, got dtype {members.dtype}')
        members = members.astype(np.int64)
        if members.size and (members.min() < 0 or members.max() >= self.num_c):
            raise ValueError(
                f'gallery indices must lie in 0..{self.num_c - 1} (the candidate pool)'
            )
        if np.unique(members).size != members.size:
            raise ValueError('a gallery lists the same candidate twice')
        out = _empty(self.num_q)
        for rows, column, buckets in self._groups:
            local = members if column is None else column[members]
            part = buckets.ranks(local[local >= 0])
            for key in _FIELDS:
                out[key][rows] = part[key]
        return QueryRanks(num_gallery=int(members.size), **out)
