"""The sort-free ranking (protocols.ranking) and the device ranking (protocols.device) against the
sorting implementation.

Every comparison is exact: same valid queries, same ranks, same unique-id ranks, AP and INP
equal to float rounding. Inputs include exact ties (quantised distances), infinite distances,
query ids absent from the gallery, the SYSU camera rule, and galleries listed in an order other
than the pool's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from protocols import device, ranking
from protocols.datasets.sysu import SYSUMM01
from protocols.evaluation import REGDB_PROTOCOL, SYSU_PROTOCOL, evaluate, test_records
from protocols.metrics import (
    QueryRanks,
    pairwise_distance,
    rank_matches,
    rank_matches_sorted,
    trial_metrics,
)
from protocols.ranking import CandidatePool, rank_gallery
from protocols.trials import sysu_galleries


def assert_same(got: QueryRanks, ref: QueryRanks) -> None:
    for key in ('valid', 'first_rank', 'first_unique_rank', 'n_positives'):
        np.testing.assert_array_equal(getattr(got, key), getattr(ref, key), err_msg=key)
    for key in ('ap', 'inp'):
        np.testing.assert_allclose(
            getattr(got, key), getattr(ref, key), rtol=0, atol=1e-12, err_msg=key
        )
    assert got.num_gallery == ref.num_gallery


def random_problem(rng: np.random.Generator, kind: str) -> tuple[np.ndarray, ...]:
    num_q, num_c, n_ids = rng.integers(1, 30), rng.integers(1, 70), rng.integers(1, 12)
    if kind == 'continuous':
        dist = rng.random((num_q, num_c))
    else:  # few distinct values: ties everywhere, also between positives and negatives
        dist = rng.integers(0, 3, (num_q, num_c)).astype(float)
        if kind == 'inf':
            dist[rng.random(dist.shape) < 0.2] = np.inf
    q_pids = rng.integers(0, n_ids + 2, num_q)  # some query ids have no candidate at all
    c_pids = rng.integers(0, n_ids, num_c)
    q_cams = rng.choice((3, 6), num_q)
    c_cams = rng.choice((1, 2, 4, 5), num_c)
    return dist, q_pids, c_pids, q_cams, c_cams


@pytest.mark.parametrize('kind', ['continuous', 'ties', 'inf'])
@pytest.mark.parametrize('camera_rule', [True, False])
def test_pool_and_gallery_match_the_sorting_implementation(kind: str, camera_rule: bool) -> None:
    rng = np.random.default_rng(hash((kind, camera_rule)) % 2**32)
    for _ in range(60):
        dist, q_pids, c_pids, q_cams, c_cams = random_problem(rng, kind)
        cams = (q_cams, c_cams) if camera_rule else ()
        whole = rank_matches_sorted(dist, q_pids, c_pids, *cams)
        assert_same(rank_gallery(dist, q_pids, c_pids, *cams), whole)
        assert_same(rank_matches(dist, q_pids, c_pids, *cams), whole)
        pool = CandidatePool(dist, q_pids, c_pids, *cams)
        assert_same(pool.ranks(), whole)
        for _ in range(4):
            # A random subset in a random order: ties must follow the gallery's order,
            # not the pool's.
            gallery = rng.permutation(dist.shape[1])[: rng.integers(1, dist.shape[1] + 1)]
            ref = rank_matches_sorted(
                dist[:, gallery],
                q_pids,
                c_pids[gallery],
                *((q_cams, c_cams[gallery]) if camera_rule else ()),
            )
            assert_same(pool.ranks(gallery), ref)


def test_a_tie_is_ordered_by_gallery_position() -> None:
    # Query id 1: its positive (candidate 0) and a negative (candidate 1) are at the same distance.
    dist = np.array([[0.5, 0.5, 0.9]])
    pool = CandidatePool(dist, np.array([1]), np.array([1, 2, 1]))
    assert pool.ranks([0, 1, 2]).first_rank[0] == 1
    assert pool.ranks([1, 0, 2]).first_rank[0] == 2  # the negative is listed first
    assert pool.ranks([1, 0, 2]).first_unique_rank[0] == 2
    assert pool.ranks([1, 2]).valid[0] and pool.ranks([1, 2]).first_rank[0] == 2


def test_row_chunks_histograms_and_wide_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    # One identity with 300 candidates: buckets no longer fit in uint8.
    c_pids = np.r_[np.zeros(300, dtype=int), rng.integers(1, 20, 200)]
    q_pids = np.r_[0, rng.integers(0, 20, 24)]
    dist = rng.random((25, c_pids.size))
    gallery = rng.permutation(c_pids.size)[:400]
    ref = rank_matches_sorted(dist[:, gallery], q_pids, c_pids[gallery])
    pool = CandidatePool(dist, q_pids, c_pids)
    assert pool._groups[0][2].buckets.dtype == np.uint16
    assert_same(pool.ranks(gallery), ref)
    # Several row chunks, and the per-row histogram instead of the flat one.
    monkeypatch.setattr(ranking, '_ROW_CHUNK', 4)
    monkeypatch.setattr(ranking, '_FLAT_HISTOGRAM_MAX_WIDTH', 10)
    assert_same(CandidatePool(dist, q_pids, c_pids).ranks(gallery), ref)
    assert_same(rank_gallery(dist, q_pids, c_pids), rank_matches_sorted(dist, q_pids, c_pids))


def test_pool_rejects_bad_galleries() -> None:
    pool = CandidatePool(np.zeros((2, 3)), [1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match='0..2'):
        pool.ranks([0, 3])
    with pytest.raises(ValueError, match='twice'):
        pool.ranks([1, 1])
    with pytest.raises(ValueError, match='integers'):
        pool.ranks([0.5])
    with pytest.raises(ValueError, match='NaN'):
        CandidatePool(np.full((2, 3), np.nan), [1, 2], [1, 2, 3])


@pytest.mark.parametrize('quantised', [False, True])
def test_every_sysu_setting_equals_the_per_trial_path(sysu_root: Path, quantised: bool) -> None:
    """evaluate() (one pool, all settings) against sorting each trial's distances as before."""
    ds = SYSUMM01(sysu_root)
    recs = test_records('sysu', sysu_root, SYSU_PROTOCOL)
    feats = np.random.default_rng(4).normal(size=(len(recs), 6))
    if quantised:  # many exact distance ties between different identities
        feats = np.round(feats)
    results = evaluate('sysu', sysu_root, SYSU_PROTOCOL, recs, feats, distance='euclidean')
    query, cand = ds.query_records(), ds.gallery_candidates()
    row = {r.path: i for i, r in enumerate(recs)}
    q_feat, c_feat = feats[[row[r.path] for r in query]], feats[[row[r.path] for r in cand]]
    dist = pairwise_distance(q_feat, c_feat, 'euclidean')
    q_pids, q_cams = np.array([r.pid for r in query]), np.array([r.cam for r in query])
    c_pids, c_cams = np.array([r.pid for r in cand]), np.array([r.cam for r in cand])
    for mode in ('all', 'indoor'):
        for shots, name in ((1, 'single'), (10, 'multi')):
            for trial, gallery in enumerate(sysu_galleries(ds, mode, shots, 'official', 10)):
                ref = trial_metrics(
                    rank_matches_sorted(
                        dist[:, gallery], q_pids, c_pids[gallery], q_cams, c_cams[gallery]
                    )
                )
                got = results[f'{mode}-{name}'].per_trial[trial]
                assert got.as_dict() == pytest.approx(ref.as_dict(), abs=1e-9)
                assert got.cmc == pytest.approx(ref.cmc, abs=1e-9)


# --------------------------------------------------------------------------------------------------
# The device path, on CPU tensors (and CUDA when present)

DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])


@pytest.mark.parametrize('dev', DEVICES)
@pytest.mark.parametrize('kind', ['continuous', 'ties'])
def test_device_pool_matches_the_sorting_implementation(dev: str, kind: str) -> None:
    rng = np.random.default_rng(11 if kind == 'ties' else 12)
    for _ in range(40):
        dist, q_pids, c_pids, q_cams, c_cams = random_problem(rng, kind)
        camera_rule = bool(rng.integers(2))
        cams = (q_cams, c_cams) if camera_rule else ()
        pool = device.DevicePool(torch.from_numpy(dist).to(dev), q_pids, c_pids, *cams)
        assert_same(pool.ranks(), rank_matches_sorted(dist, q_pids, c_pids, *cams))
        gallery = rng.permutation(dist.shape[1])[: rng.integers(1, dist.shape[1] + 1)]
        ref = rank_matches_sorted(
            dist[:, gallery],
            q_pids,
            c_pids[gallery],
            *((q_cams, c_cams[gallery]) if camera_rule else ()),
        )
        assert_same(pool.ranks(gallery), ref)


@pytest.mark.parametrize('metric', ['cosine', 'euclidean', 'inner_product'])
def test_device_distance_matches_numpy(metric: str) -> None:
    rng = np.random.default_rng(3)
    q, g = rng.normal(size=(7, 5)).astype(np.float32), rng.normal(size=(9, 5)).astype(np.float32)
    q[0] = 0.0  # a zero feature: distance 1 to everything under cosine, as on the host
    got = device.pairwise_distance(torch.from_numpy(q), torch.from_numpy(g), metric)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), pairwise_distance(q, g, metric), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match='dimensions'):
        device.pairwise_distance(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match='manhattan'):
        device.pairwise_distance(torch.zeros(2, 3), torch.zeros(2, 3), 'manhattan')


def _same_results(got: dict, ref: dict) -> None:
    assert list(got) == list(ref)
    for key in ref:
        assert len(got[key].per_trial) == len(ref[key].per_trial)
        for a, b in zip(got[key].per_trial, ref[key].per_trial):
            assert a.as_dict() == pytest.approx(b.as_dict(), abs=1e-9)
        assert got[key].mean == pytest.approx(ref[key].mean, abs=1e-9)


@pytest.mark.parametrize('dev', DEVICES)
def test_evaluate_on_tensors_equals_numpy(sysu_root: Path, regdb_root: Path, dev: str) -> None:
    rng = np.random.default_rng(5)
    for name, root, protocol in (
        ('sysu', sysu_root, SYSU_PROTOCOL),
        ('regdb', regdb_root, REGDB_PROTOCOL),
    ):
        recs = test_records(name, root, protocol)
        feats = rng.normal(size=(len(recs), 16)).astype(np.float32)
        for distance in ('cosine', 'euclidean', 'inner_product'):
            ref = evaluate(name, root, protocol, recs, feats, distance=distance)
            got = evaluate(
                name, root, protocol, recs, torch.from_numpy(feats).to(dev), distance=distance
            )
            _same_results(got, ref)


def test_tensor_input_errors(sysu_root: Path) -> None:
    recs = test_records('sysu', sysu_root, SYSU_PROTOCOL)
    feats = torch.randn(len(recs), 4)
    feats[3] = float('nan')
    with pytest.raises(ValueError, match=r'NaN/inf in 1 row\(s\): 3 '):
        evaluate('sysu', sysu_root, SYSU_PROTOCOL, recs, feats)
    with pytest.raises(ValueError, match='real numbers'):
        evaluate(
            'sysu', sysu_root, SYSU_PROTOCOL, recs, torch.zeros(len(recs), 4, dtype=torch.bool)
        )
    with pytest.raises(ValueError, match='rows but'):
        evaluate('sysu', sysu_root, SYSU_PROTOCOL, recs, torch.zeros(len(recs) - 1, 4))
    with pytest.raises(ValueError, match='NaN'):
        device.DevicePool(torch.full((2, 2), float('nan')), [1, 2], [1, 2])
    with pytest.raises(ValueError, match='0..1'):
        device.DevicePool(torch.zeros(2, 2), [1, 2], [1, 2]).ranks([2])
