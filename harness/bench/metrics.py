"""Benchmark: the protocol evaluation at real SYSU-MM01 and RegDB sizes against the AGW-style path.

The stand-in has the real SYSU-MM01 test structure (``protocols.counts``: the 96 test ids, which
camera saw which id, the images of each camera: 3,803 IR queries and 6,775 visible candidates, at
least 10 per gallery camera and id) and draws its galleries the way ``rand_perm_cam.mat`` does (per
trial and (camera, id) a random permutation, its first 1 or 10 images, in camera / id order):
galleries of 301 and 3,010 images (all-search), 112 and 1,120 (indoor). Features are random,
clustered by identity, L2-normalised, 2048-d. RegDB: 206 test ids x 10 visible and 10 thermal
images per split.

Cases, each timed in this run for both sides (wall and CPU seconds; the machine's load is printed).
The harness side, short, is run several times spread over the reference's run and its median is
reported, so that one burst of load on a shared machine does not decide the ratio:

* ``protocol``: every SYSU setting and trial (all/indoor x single/multi x 10) from one feature
  matrix, :func:`protocols.evaluation.score_sysu`, against the AGW-style path: per setting and
  trial, gallery features -> distance -> the official per-query ``eval_sysu``
  (:func:`agw_eval_sysu`). Also timed: one distance matrix and each trial sorted by the harness's
  previous metrics (:func:`protocols.metrics.rank_matches_sorted`).
* ``single``: one ``eval_sysu`` call at all-search multi-shot size (3,803 x 3,010), ours against
  :func:`agw_eval_sysu` on the same distance matrix.
* ``regdb``: ten splits x two directions, :func:`protocols.evaluation.score_regdb` (one distance
  per split) against per split and direction: distance -> the official ``eval_regdb``
  (:func:`agw_eval_regdb`).

Both sides of a case must give the same numbers (CMC, mAP, mINP), or the benchmark fails.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from protocols import counts
from protocols import metrics as M
from protocols.evaluation import score_regdb, score_sysu
from protocols.trials import sysu_setting

QUICK: dict[str, Any] = dict(ids=12, dim=32, trials=2, regdb_ids=12, regdb_splits=1)
TARGETS = {'protocol': 40.0, 'single': 30.0}
CASES = ('protocol', 'single', 'regdb')
_ATOL = 1e-6
_GALLERY_CAMS = {'all': (1, 2, 4, 5), 'indoor': (1, 2)}
_QUERY_CAMS = (3, 6)
_SHOTS = (1, 10)


# ------------------------------------------------------------------------------------------------
# The official per-query metrics, as AGW's eval_metrics.py computes them (written out here, to time
# them): mangye16/Cross-Modal-Re-ID-baseline, commit e817a2672c1e14e8802617acb980a79520ef9545,
# https://github.com/mangye16/Cross-Modal-Re-ID-baseline/blob/e817a26/eval_metrics.py


def agw_eval_sysu(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 20,
) -> tuple[np.ndarray, float, float]:
    """AGW's ``eval_sysu``: default argsort, then a loop over queries (unique-id CMC, AP, INP).

    One deviation: a query with fewer distinct gallery ids than ``max_rank`` has its unique-id CMC
    row padded with its last value, so that small stand-ins work (AGW would build a ragged array).
    """
    num_q, num_g = distmat.shape
    max_rank = min(max_rank, num_g)
    indices = np.argsort(distmat, axis=1)
    pred_label = g_pids[indices]
    matches = (pred_label == q_pids[:, np.newaxis]).astype(np.int32)
    unique_rows, standard_rows, aps, inps = [], [], [], []
    num_valid = 0.0
    for q in range(num_q):
        kept = np.invert((q_camids[q] == 3) & (g_camids[indices[q]] == 2))
        labels = pred_label[q][kept]
        first_pos = np.unique(labels, return_index=True)[1]
        ranked_ids = np.asarray([labels[i] for i in sorted(first_pos)])
        row = (ranked_ids == q_pids[q]).astype(np.int32).cumsum()[:max_rank]
        if row.size < max_rank:
            row = np.concatenate([row, np.full(max_rank - row.size, row[-1] if row.size else 0)])
        unique_rows.append(row)
        hits = matches[q][kept]
        if not np.any(hits):
            continue
        cum = hits.cumsum()
        last = np.max(np.where(hits == 1))
        inps.append(cum[last] / (last + 1.0))
        cum[cum > 1] = 1
        standard_rows.append(cum[:max_rank])  # AGW computes the position CMC too, then drops it
        num_valid += 1.0
        precision = np.asarray([x / (i + 1.0) for i, x in enumerate(hits.cumsum())]) * hits
        aps.append(precision.sum() / hits.sum())
    assert num_valid > 0, 'no valid query'
    cmc = np.asarray(unique_rows).astype(np.float32).sum(0) / num_valid
    return cmc, float(np.mean(aps)), float(np.mean(inps))


def agw_eval_regdb(
    distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, max_rank: int = 20
) -> tuple[np.ndarray, float, float]:
    """AGW's ``eval_regdb``: default argsort, a Python loop over queries (position CMC, AP, INP)."""
    num_q, num_g = distmat.shape
    max_rank = min(max_rank, num_g)
    indices = np.argsort(distmat, axis=1)
    matches = (g_pids[indices] == q_pids[:, np.newaxis]).astype(np.int32)
    q_camids, g_camids = np.ones(num_q, dtype=np.int32), 2 * np.ones(num_g, dtype=np.int32)
    rows, aps, inps = [], [], []
    num_valid = 0.0
    for q in range(num_q):
        order = indices[q]
        kept = np.invert((g_pids[order] == q_pids[q]) & (g_camids[order] == q_camids[q]))
        hits = matches[q][kept]
        if not np.any(hits):
            continue
        cum = hits.cumsum()
        last = np.max(np.where(hits == 1))
        inps.append(cum[last] / (last + 1.0))
        cum[cum > 1] = 1
        rows.append(cum[:max_rank])
        num_valid += 1.0
        precision = np.asarray([x / (i + 1.0) for i, x in enumerate(hits.cumsum())]) * hits
        aps.append(precision.sum() / hits.sum())
    assert num_valid > 0, 'no valid query'
    cmc = np.asarray(rows).astype(np.float32).sum(0) / num_valid
    return cmc, float(np.mean(aps)), float(np.mean(inps))


# ------------------------------------------------------------------------------------------------
# Stand-ins


def _features(rng: np.random.Generator, centres: np.ndarray, pids: np.ndarray) -> np.ndarray:
    # The identity signal shrinks like dim**-0.25, so the margin stays comparable to the cosine
    # noise (~dim**-0.5) at any dim: rank-1 lands mid-range and every metric is informative.
    dim = centres.shape[1]
    x = centres[pids] * (1.6 * dim**-0.25) + rng.normal(size=(pids.size, dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _spread(rng: np.random.Generator, total: int, n: int, minimum: int) -> np.ndarray:
    """``n`` image counts >= ``minimum`` summing to ``total`` (uneven, like real id folders)."""
    extra = max(total - n * minimum, 0)
    return minimum + rng.multinomial(extra, rng.dirichlet(np.full(n, 2.0)))


def sysu_standin(ids: int = 96, dim: int = 2048, trials: int = 10, seed: int = 0) -> dict[str, Any]:
    """Query/candidate features, ids, cameras and trial galleries: the SYSU-MM01 test structure.

    ``ids`` < 96 keeps the first test ids and scales each camera's image count to them.
    """
    if not 1 <= ids <= len(counts.SYSU_TEST_IDS):
        raise ValueError(f'ids must be in 1..{len(counts.SYSU_TEST_IDS)}, got {ids}')
    rng = np.random.default_rng(seed)
    test_ids = counts.SYSU_TEST_IDS[:ids]
    images: dict[tuple[int, int], int] = {}
    for cam, total in counts.SYSU_TEST_IMAGES.items():
        missing = set(counts.SYSU_TEST_IDS_MISSING[cam])
        present = [pid for pid in test_ids if pid not in missing]
        if not present:
            continue
        full = len(counts.SYSU_TEST_IDS) - len(missing)
        minimum = 1 if cam in _QUERY_CAMS else counts.SYSU_MIN_GALLERY_IMAGES
        sizes = _spread(rng, round(total * len(present) / full), len(present), minimum)
        images.update({(cam, pid): int(n) for pid, n in zip(present, sizes)})

    def listing(cams: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        # id-major, then camera, then image: the harness's query and candidate order.
        pairs = [
            (pid, cam) for pid in test_ids for cam in cams for _ in range(images.get((cam, pid), 0))
        ]
        return np.array([p for p, _ in pairs]), np.array([c for _, c in pairs])

    q_pids, q_cams = listing(_QUERY_CAMS)
    c_pids, c_cams = listing(_GALLERY_CAMS['all'])
    first = {}
    for i, key in enumerate(zip(c_cams.tolist(), c_pids.tolist())):
        first.setdefault(key, i)
    # rand_perm_cam: per (camera, id) one permutation per trial; a gallery takes its first `shots`.
    perms = {
        key: [rng.permutation(n) for _ in range(trials)]
        for key, n in images.items()
        if key[0] not in _QUERY_CAMS
    }

    def gallery(cams: tuple[int, ...], shots: int, t: int) -> np.ndarray:
        picks = [
            first[(cam, pid)] + k
            for cam in cams
            for pid in test_ids
            if (cam, pid) in perms
            for k in perms[(cam, pid)][t][:shots]
        ]
        return np.array(picks, dtype=np.int64)

    galleries = {
        sysu_setting(mode, shots): [gallery(cams, shots, t) for t in range(trials)]
        for mode, cams in _GALLERY_CAMS.items()
        for shots in _SHOTS
    }
    centres = rng.normal(size=(max(test_ids) + 1, dim))
    return dict(
        q_feat=_features(rng, centres, q_pids),
        q_pids=q_pids,
        q_cams=q_cams,
        c_feat=_features(rng, centres, c_pids),
        c_pids=c_pids,
        c_cams=c_cams,
        galleries=galleries,
    )


def regdb_standin(
    ids: int = counts.REGDB_TEST_IDS, dim: int = 2048, seed: int = 0
) -> dict[str, np.ndarray]:
    """One split's test set: ``ids`` people x 10 visible and 10 thermal images."""
    rng = np.random.default_rng(seed)
    pids = np.repeat(np.arange(ids), counts.REGDB_IMAGES_PER_ID)
    centres = rng.normal(size=(ids, dim))
    return dict(
        visible=_features(rng, centres, pids), thermal=_features(rng, centres, pids), pids=pids
    )


# ------------------------------------------------------------------------------------------------
# Timing


class _Clock:
    """Wall and CPU seconds spent inside ``with clock:`` blocks."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def __enter__(self) -> _Clock:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall += time.perf_counter() - self._wall
        self.cpu += time.process_time() - self._cpu


class _Runs:
    """Separate timed runs of the same work; ``wall``/``cpu`` are their medians.

    The harness side is short, so a burst of load on this shared machine can swamp one run of it;
    its runs are spread over the reference's (much longer) run, and the median is reported.
    """

    def __init__(self) -> None:
        self.runs: list[_Clock] = []

    def __enter__(self) -> _Clock:
        self.runs.append(_Clock())
        return self.runs[-1].__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.runs[-1].__exit__(*exc)

    @property
    def wall(self) -> float:
        return float(np.median([r.wall for r in self.runs]))

    @property
    def cpu(self) -> float:
        return float(np.median([r.cpu for r in self.runs]))


def _legacy(result: M.ProtocolResult) -> list[tuple[np.ndarray, float, float]]:
    return [(np.asarray(t.cmc) / 100.0, t.mAP / 100.0, t.mINP / 100.0) for t in result.per_trial]


def max_abs_difference(
    ours: tuple[np.ndarray, float, float], ref: tuple[np.ndarray, float, float]
) -> float:
    """Largest absolute difference of two (cmc, mAP, mINP) results; inf if CMC lengths differ."""
    if np.shape(ours[0]) != np.shape(ref[0]):
        return float('inf')
    cmc_diff = np.max(np.abs(np.asarray(ours[0], np.float64) - np.asarray(ref[0], np.float64)))
    return float(max(cmc_diff, abs(ours[1] - ref[1]), abs(ours[2] - ref[2])))


def _case(
    name: str, ours: _Clock | _Runs, ref: _Clock, diff: float, extra: dict | None = None
) -> dict[str, Any]:
    if not diff <= _ATOL:
        raise RuntimeError(
            f'{name}: the harness and the AGW-style reference disagree by '
            f'{diff:.3g} (tolerance {_ATOL}); the harness metrics are wrong here'
        )
    out = dict(
        ours_wall_s=round(ours.wall, 4),
        ours_cpu_s=round(ours.cpu, 4),
        ref_wall_s=round(ref.wall, 4),
        ref_cpu_s=round(ref.cpu, 4),
        speedup=ref.wall / max(ours.wall, 1e-9),
        speedup_cpu=ref.cpu / max(ours.cpu, 1e-9),
        max_abs_diff=diff,
        **(extra or {}),
    )
    if isinstance(ours, _Runs):
        out['ours_runs_wall_s'] = [round(r.wall, 4) for r in ours.runs]
    if name in TARGETS:
        out['target'] = TARGETS[name]
        out['meets_target'] = out['speedup'] >= TARGETS[name]
    return out


def bench_protocol(sysu: dict[str, Any], sorted_baseline: bool = True) -> dict[str, Any]:
    q_feat, q_pids, q_cams = sysu['q_feat'], sysu['q_pids'], sysu['q_cams']
    c_feat, c_pids, c_cams = sysu['c_feat'], sysu['c_pids'], sysu['c_cams']
    ours, ref, old = _Runs(), _Clock(), _Clock()

    def score() -> dict[str, M.ProtocolResult]:
        with ours:
            return score_sysu(q_feat, c_feat, q_pids, q_cams, c_pids, c_cams, sysu['galleries'])

    results = score()
    diff = 0.0
    if sorted_baseline:
        with old:
            dist = M.pairwise_distance(q_feat, c_feat)
    for setting, trials in sysu['galleries'].items():
        for g, mine in zip(trials, _legacy(results[setting])):
            with ref:  # AGW test.py: distmat = query_feat @ gall_feat.T; eval_sysu(-distmat, ...)
                theirs = agw_eval_sysu(
                    -(q_feat @ c_feat[g].T), q_pids, c_pids[g], q_cams, c_cams[g]
                )
            diff = max(diff, max_abs_difference(mine, theirs))
            if sorted_baseline:  # one distance matrix, then each trial's columns sorted
                with old:
                    ranks = M.rank_matches_sorted(dist[:, g], q_pids, c_pids[g], q_cams, c_cams[g])
                    M.trial_metrics(ranks)
        score()  # once more after each setting's reference trials
    extra = dict(
        mean_R1={k: round(r.mean['R1'], 2) for k, r in results.items()},
        mean_mAP={k: round(r.mean['mAP'], 2) for k, r in results.items()},
    )
    if sorted_baseline:
        extra.update(
            sorted_per_trial_wall_s=round(old.wall, 4),
            sorted_per_trial_cpu_s=round(old.cpu, 4),
            speedup_vs_sorted_per_trial=old.wall / max(ours.wall, 1e-9),
        )
    return _case('protocol', ours, ref, diff, extra)


def bench_single(sysu: dict[str, Any]) -> dict[str, Any]:
    g = sysu['galleries']['all-multi'][0]
    dist = M.pairwise_distance(sysu['q_feat'], sysu['c_feat'][g])
    args = (dist, sysu['q_pids'], sysu['c_pids'][g], sysu['q_cams'], sysu['c_cams'][g])
    ours, ref = _Runs(), _Clock()
    with ours:
        mine = M.eval_sysu(*args)
    with ref:
        theirs = agw_eval_sysu(*args)
    for _ in range(2):  # after the reference, too
        with ours:
            M.eval_sysu(*args)
    diff = max_abs_difference(mine, theirs)
    return _case('single', ours, ref, diff, dict(shape=list(dist.shape)))


def bench_regdb(ids: int, dim: int, splits: int, seed: int) -> dict[str, Any]:
    per_split, ref, ours_dist, ref_dist = [], _Clock(), _Clock(), _Clock()
    diff = 0.0
    for split in range(splits):
        data = regdb_standin(ids, dim, seed + split)  # each split has its own model and features
        vis, th, pids = data['visible'], data['thermal'], data['pids']
        ours = _Runs()
        with ours:
            results = score_regdb(vis, th, pids, pids)
        with ours_dist:  # the distance alone, to show the metrics' share
            M.pairwise_distance(vis, th)
        for direction, (a, b) in (('v2t', (vis, th)), ('t2v', (th, vis))):
            with ref, ref_dist:
                dist = -(a @ b.T)
            with ref:
                theirs = agw_eval_regdb(dist, pids, pids)
            diff = max(diff, max_abs_difference(_legacy(results[direction])[0], theirs))
        for _ in range(2):  # after the reference, too
            with ours:
                score_regdb(vis, th, pids, pids)
        per_split.append(ours)
    total = _Clock()
    total.wall, total.cpu = sum(r.wall for r in per_split), sum(r.cpu for r in per_split)
    shape = [ids * counts.REGDB_IMAGES_PER_ID] * 2
    metrics_only = (ref.wall - ref_dist.wall) / max(total.wall - ours_dist.wall, 1e-9)
    return _case(
        'regdb',
        total,
        ref,
        diff,
        dict(
            splits=splits,
            shape=shape,
            ours_distance_wall_s=round(ours_dist.wall, 4),
            ref_distance_wall_s=round(ref_dist.wall, 4),
            speedup_metrics_only=metrics_only,
        ),
    )


def run(
    ids: int = 96,
    dim: int = 2048,
    trials: int = 10,
    regdb_ids: int = counts.REGDB_TEST_IDS,
    regdb_splits: int = 10,
    seed: int = 0,
    cases: tuple[str, ...] = CASES,
    sorted_baseline: bool = True,
    verbose: bool = True,
) -> dict[str, Any]:
    """Time every case; RuntimeError if the two sides of a case disagree."""
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        raise ValueError(f'unknown case(s) {unknown}; choose among {list(CASES)}')
    load_before = os.getloadavg()
    result: dict[str, Any] = {
        'benchmark': 'metrics',
        'cpus': len(os.sched_getaffinity(0)),
        'config': dict(
            ids=ids,
            dim=dim,
            trials=trials,
            regdb_ids=regdb_ids,
            regdb_splits=regdb_splits,
            seed=seed,
        ),
    }
    steps: dict[str, Callable[[], dict]] = {}
    if {'protocol', 'single'} & set(cases):
        sysu = sysu_standin(ids, dim, trials, seed)
        sizes = {k: int(v[0].size) for k, v in sysu['galleries'].items()}
        result['sysu'] = dict(
            queries=int(sysu['q_pids'].size),
            candidates=int(sysu['c_pids'].size),
            gallery_sizes=sizes,
        )
        steps['protocol'] = lambda: bench_protocol(sysu, sorted_baseline)
        steps['single'] = lambda: bench_single(sysu)
    steps['regdb'] = lambda: bench_regdb(regdb_ids, dim, regdb_splits, seed)
    for name in CASES:
        if name in cases:
            result[name] = steps[name]()
            if verbose:
                _print_case(name, result[name])
    result['load'] = dict(
        before=[round(v, 2) for v in load_before], after=[round(v, 2) for v in os.getloadavg()]
    )
    if verbose:
        load = result['load']
        print(
            f'load average (1, 5, 15 min) {load["before"]} before, {load["after"]} after, on '
            f'{result["cpus"]} CPUs; ratios compare times measured in this run'
        )
    return result


_TITLES = {
    'protocol': 'SYSU whole protocol (4 settings x trials, one feature matrix)',
    'single': 'one eval_sysu call (all-search multi-shot size)',
    'regdb': 'RegDB splits x 2 directions',
}


def _print_case(name: str, r: dict[str, Any]) -> None:
    target = ''
    if 'target' in r:
        target = f'  target >= {r["target"]:.0f}x: {"met" if r["meets_target"] else "NOT met"}'
    print(
        f'{_TITLES[name]}:\n'
        f'  harness      {r["ours_wall_s"]:9.3f} s wall {r["ours_cpu_s"]:9.3f} s CPU\n'
        f'  AGW-style    {r["ref_wall_s"]:9.3f} s wall {r["ref_cpu_s"]:9.3f} s CPU\n'
        f'  speed-up {r["speedup"]:.1f}x wall, {r["speedup_cpu"]:.1f}x CPU{target}; '
        f'max |diff| {r["max_abs_diff"]:.1e}'
    )
    if 'speedup_metrics_only' in r:
        print(
            f'  distances: harness {r["ours_distance_wall_s"]:.3f} s (one per split), AGW-style '
            f'{r["ref_distance_wall_s"]:.3f} s (one per direction); metrics alone '
            f'{r["speedup_metrics_only"]:.1f}x'
        )
    if 'speedup_vs_sorted_per_trial' in r:
        print(
            f'  previous harness path (one distance, each trial sorted): '
            f'{r["sorted_per_trial_wall_s"]:.3f} s wall, {r["speedup_vs_sorted_per_trial"]:.1f}x '
            f'the time of the pool'
        )
