"""Benchmark: vectorised ``protocols.metrics`` vs. an AGW-style per-query loop on a SYSU-sized problem.

Random L2-normalised features stand in for cached model outputs (3,803 IR queries, 6,775 RGB gallery
candidates). Each trial draws one candidate per (identity, RGB camera) like SYSU all-search single-shot
(cam1/cam2 hold only part of the identities, as in SYSU, giving about 301 gallery images), computes the
distance on that subset and scores it. Both implementations score the same draws; their numbers must agree.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from protocols import metrics as M

QUICK: dict[str, Any] = dict(n_query=400, n_gallery_candidates=800, dim=128, trials=3)
TARGET_SPEEDUP = 20.0
_ATOL = 1e-6
_QUERY_CAMS = (3, 6)
_GALLERY_CAMS = (1, 2, 4, 5)
_INDOOR_CAMS = (1, 2)
_INDOOR_ID_FRACTION = 56 / 96  # SYSU: cam1/cam2 see 56 of the 96 test identities


def make_problem(n_query: int, n_gallery_candidates: int, dim: int, seed: int,
                 n_ids: int = 96) -> dict[str, np.ndarray]:
    """Random identity-clustered, L2-normalised features with SYSU-like pids and cameras."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_ids, dim))
    n_indoor = max(1, round(n_ids * _INDOOR_ID_FRACTION))

    q_pids = rng.integers(0, n_ids, n_query)
    q_cams = rng.choice(_QUERY_CAMS, n_query)
    g_cams = rng.choice(_GALLERY_CAMS, n_gallery_candidates)
    indoor = np.isin(g_cams, _INDOOR_CAMS)
    g_pids = np.where(indoor, rng.integers(0, n_indoor, n_gallery_candidates),
                      rng.integers(0, n_ids, n_gallery_candidates))

    def features(pids: np.ndarray) -> np.ndarray:
        # Signal shrinks like dim**-0.25 so the identity margin stays comparable to the cosine noise
        # (~dim**-0.5) at any dim: rank-1 lands mid-range and the metrics are informative.
        x = centres[pids] * (1.6 * dim ** -0.25) + rng.normal(size=(pids.size, dim))
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return dict(q_feat=features(q_pids), q_pids=q_pids, q_cams=q_cams,
                g_feat=features(g_pids), g_pids=g_pids, g_cams=g_cams)


def draw_single_shot(g_pids: np.ndarray, g_cams: np.ndarray, trials: int, seed: int) -> list[np.ndarray]:
    """Per trial, one random candidate index per (pid, camera), sorted ascending (gallery order)."""
    rng = np.random.default_rng(seed + 1)
    key = g_pids.astype(np.int64) * 16 + g_cams
    draws = []
    for _ in range(trials):
        perm = rng.permutation(key.size)
        _, first = np.unique(key[perm], return_index=True)
        draws.append(np.sort(perm[first]))
    return draws


def agw_reference_eval_sysu(distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray,
                            q_camids: np.ndarray, g_camids: np.ndarray,
                            max_rank: int = 20) -> tuple[np.ndarray, float, float]:
    """Per-query loop in the style of AGW's ``eval_sysu`` (default argsort, np.unique, list comprehensions).

    The only deviation: short unique-id rows are padded with their last value, so tiny problems work.
    """
    num_q, num_g = distmat.shape
    max_rank = min(max_rank, num_g)
    indices = np.argsort(distmat, axis=1)
    pred_label = g_pids[indices]
    matches = (pred_label == q_pids[:, np.newaxis]).astype(np.int32)
    unique_cmc_rows, ap_list, inp_list = [], [], []
    num_valid = 0.0
    for q in range(num_q):
        removed = (q_camids[q] == 3) & (g_camids[indices[q]] == 2)
        kept = np.invert(removed)
        labels = pred_label[q][kept]
        first_pos = np.unique(labels, return_index=True)[1]
        ranked_ids = np.asarray([labels[i] for i in sorted(first_pos)])
        row = (ranked_ids == q_pids[q]).astype(np.int32).cumsum()[:max_rank]
        if row.size < max_rank:
            row = np.concatenate([row, np.full(max_rank - row.size, row[-1] if row.size else 0)])
        unique_cmc_rows.append(row)

        hits = matches[q][kept]
        if not np.any(hits):
            continue
        cum = hits.cumsum()
        last = np.max(np.where(hits == 1))
        inp_list.append(cum[last] / (last + 1.0))
        num_valid += 1.0
        precision = np.asarray([x / (i + 1.0) for i, x in enumerate(cum)]) * hits
        ap_list.append(precision.sum() / hits.sum())
    assert num_valid > 0, 'no valid query'
    cmc = np.asarray(unique_cmc_rows).astype(np.float32).sum(0) / num_valid
    return cmc, float(np.mean(ap_list)), float(np.mean(inp_list))


def max_abs_difference(ours: tuple[np.ndarray, float, float], ref: tuple[np.ndarray, float, float]) -> float:
    """Largest absolute difference between two (cmc, mAP, mINP) results; inf if CMC lengths differ."""
    if np.shape(ours[0]) != np.shape(ref[0]):
        return float('inf')
    cmc_diff = np.max(np.abs(np.asarray(ours[0], np.float64) - np.asarray(ref[0], np.float64)))
    return float(max(cmc_diff, abs(ours[1] - ref[1]), abs(ours[2] - ref[2])))


def run(n_query: int = 3803, n_gallery_candidates: int = 6775, dim: int = 2048, trials: int = 10,
        seed: int = 0, verbose: bool = True) -> dict[str, Any]:
    """Time both implementations on the same draws; RuntimeError if their numbers disagree."""
    problem = make_problem(n_query, n_gallery_candidates, dim, seed)
    draws = draw_single_shot(problem['g_pids'], problem['g_cams'], trials, seed)
    q_feat, q_pids, q_cams = problem['q_feat'], problem['q_pids'], problem['q_cams']

    ours, ref = [], []
    t = dict(ours_distance=0.0, ours_metrics=0.0, ref_distance=0.0, ref_metrics=0.0)
    for idx in draws:
        g_feat, g_pids, g_cams = problem['g_feat'][idx], problem['g_pids'][idx], problem['g_cams'][idx]

        t0 = time.perf_counter()
        dist = M.pairwise_distance(q_feat, g_feat, 'cosine')
        t1 = time.perf_counter()
        ours.append(M.eval_sysu(dist, q_pids, g_pids, q_cams, g_cams))
        t2 = time.perf_counter()
        # AGW: cosine similarity of normalised features, negated into a distance.
        ref_dist = -(q_feat @ g_feat.T)
        t3 = time.perf_counter()
        ref.append(agw_reference_eval_sysu(ref_dist, q_pids, g_pids, q_cams, g_cams))
        t4 = time.perf_counter()

        t['ours_distance'] += t1 - t0
        t['ours_metrics'] += t2 - t1
        t['ref_distance'] += t3 - t2
        t['ref_metrics'] += t4 - t3

    diff = max(max_abs_difference(a, b) for a, b in zip(ours, ref))
    if not diff <= _ATOL:
        raise RuntimeError(f'protocols.metrics and the AGW-style reference disagree by {diff:.3g} '
                           f'(tolerance {_ATOL}); the vectorised metrics are wrong for this input')

    ours_total = t['ours_distance'] + t['ours_metrics']
    ref_total = t['ref_distance'] + t['ref_metrics']
    result: dict[str, Any] = {
        'benchmark': 'metrics',
        'config': dict(n_query=n_query, n_gallery_candidates=n_gallery_candidates, dim=dim, trials=trials,
                       seed=seed, mean_gallery_size=float(np.mean([d.size for d in draws]))),
        'seconds': {k: round(v, 6) for k, v in t.items()} | {'ours_total': round(ours_total, 6),
                                                              'ref_total': round(ref_total, 6)},
        'speedup_metrics': t['ref_metrics'] / max(t['ours_metrics'], 1e-12),
        'speedup_total': ref_total / max(ours_total, 1e-12),
        'target_speedup': TARGET_SPEEDUP,  # applies to the metrics part; distances cost the same in both
        'max_abs_diff': diff,
        'mean_R1': float(100 * np.mean([r[0][0] for r in ours])),
        'mean_mAP': float(100 * np.mean([r[1] for r in ours])),
    }
    result['meets_target'] = result['speedup_metrics'] >= TARGET_SPEEDUP
    if verbose:
        s = result['seconds']
        gallery = result['config']['mean_gallery_size']
        print(f"metrics benchmark: {trials} trials, {n_query} queries x ~{gallery:.0f} gallery "
              f"(from {n_gallery_candidates} candidates), dim {dim}")
        print(f"  protocols.metrics : distance {s['ours_distance']:.3f}s + metrics {s['ours_metrics']:.3f}s")
        print(f"  AGW-style loop    : distance {s['ref_distance']:.3f}s + metrics {s['ref_metrics']:.3f}s")
        print(f"  speed-up: metrics {result['speedup_metrics']:.1f}x, total {result['speedup_total']:.1f}x "
              f"(target >= {TARGET_SPEEDUP:.0f}x on metrics); max |diff| {diff:.2e}; "
              f"R1 {result['mean_R1']:.2f} mAP {result['mean_mAP']:.2f}")
    return result
