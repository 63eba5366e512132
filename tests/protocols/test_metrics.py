"""protocols.metrics against an independent per-query brute force written from the metric
definitions in docs/protocols.md."""

from __future__ import annotations

import json

import numpy as np
import pytest

from protocols import metrics as M

# --------------------------------------------------------------------------------------------------
# Brute-force reference: explicit loops, the metric definitions read literally (with padding for
# short unique lists).


def _brute(distmat, q_pids, g_pids, q_cams=None, g_cams=None, max_rank=20, unique=True):
    num_q, num_g = distmat.shape
    max_rank = min(max_rank, num_g)
    cmc_rows, aps, inps = [], [], []
    for q in range(num_q):
        order = np.argsort(distmat[q], kind='stable')
        kept = []
        for j in order:
            if q_cams is not None and q_cams[q] == 3 and g_cams[j] == 2:
                continue
            kept.append(j)
        labels = [g_pids[j] for j in kept]
        hits = [1 if lab == q_pids[q] else 0 for lab in labels]
        if sum(hits) == 0:
            continue
        if unique:
            ranked_ids = []
            for lab in labels:
                if lab not in ranked_ids:
                    ranked_ids.append(lab)
            seq = [1 if lab == q_pids[q] else 0 for lab in ranked_ids]
        else:
            seq = hits
        row, acc = [], 0
        for v in seq[:max_rank]:
            acc = min(1, acc + v)
            row.append(acc)
        while len(row) < max_rank:  # pad with the last value
            row.append(row[-1])
        cmc_rows.append(row)
        found, precisions, last_pos = 0, [], 0
        for i, h in enumerate(hits):
            if h:
                found += 1
                precisions.append(found / (i + 1))
                last_pos = i + 1
        aps.append(sum(precisions) / found)
        inps.append(found / last_pos)
    return (
        np.mean(np.array(cmc_rows, dtype=np.float64), axis=0),
        float(np.mean(aps)),
        float(np.mean(inps)),
        len(aps),
    )


def _random_problem(rng, num_q, num_g, n_ids, g_cam_choices=(1, 2, 4, 5), q_cam_choices=(3, 6)):
    q_pids = rng.integers(0, n_ids, num_q)
    g_pids = rng.integers(0, n_ids, num_g)
    q_cams = rng.choice(q_cam_choices, num_q)
    g_cams = rng.choice(g_cam_choices, num_g)
    dist = rng.random((num_q, num_g))  # continuous: no ties (almost surely)
    return dist, q_pids, g_pids, q_cams, g_cams


def _assert_close(got, ref):
    cmc, mAP, mINP = got
    rcmc, rmAP, rmINP, _ = ref
    np.testing.assert_allclose(np.asarray(cmc, dtype=np.float64), rcmc, atol=1e-6, rtol=0)
    assert abs(mAP - rmAP) < 1e-6
    assert abs(mINP - rmINP) < 1e-6


# --------------------------------------------------------------------------------------------------
# Agreement with the brute force


@pytest.mark.parametrize(
    'seed,num_q,num_g,n_ids',
    [
        (0, 40, 60, 8),  # many positives per query, few ids (< max_rank unique ids: padding)
        (1, 30, 300, 40),  # SYSU-like single-shot size class
        (2, 25, 12, 5),  # gallery smaller than max_rank
        (3, 50, 80, 60),  # sparse ids: some queries have no match at all
    ],
)
def test_eval_sysu_matches_brute_force(seed, num_q, num_g, n_ids):
    rng = np.random.default_rng(seed)
    dist, qp, gp, qc, gc = _random_problem(rng, num_q, num_g, n_ids)
    ref = _brute(dist, qp, gp, qc, gc, unique=True)
    got = M.eval_sysu(dist, qp, gp, qc, gc)
    assert got[0].dtype == np.float32
    assert got[0].shape == (min(20, num_g),)
    _assert_close(got, ref)
    assert M.rank_matches(dist, qp, gp, qc, gc).n_valid == ref[3]


@pytest.mark.parametrize(
    'seed,num_q,num_g,n_ids', [(4, 40, 70, 10), (5, 30, 9, 4), (6, 60, 50, 45)]
)
def test_eval_regdb_matches_brute_force(seed, num_q, num_g, n_ids):
    rng = np.random.default_rng(seed)
    dist, qp, gp, _, _ = _random_problem(rng, num_q, num_g, n_ids)
    ref = _brute(dist, qp, gp, unique=False)
    got = M.eval_regdb(dist, qp, gp)
    assert got[0].dtype == np.float32
    _assert_close(got, ref)


def test_queries_without_match_are_skipped():
    rng = np.random.default_rng(7)
    dist, qp, gp, qc, gc = _random_problem(rng, 30, 50, 6)
    qp[:10] = 999  # ids absent from the gallery
    ranks = M.rank_matches(dist, qp, gp, qc, gc)
    assert not ranks.valid[:10].any()
    assert np.isnan(ranks.ap[:10]).all()
    ref = _brute(dist, qp, gp, qc, gc)
    _assert_close(M.eval_sysu(dist, qp, gp, qc, gc), ref)
    # Dropping the invalid queries changes nothing: they are excluded, not counted as misses.
    _assert_close(M.eval_sysu(dist[10:], qp[10:], gp, qc[10:], gc), ref)


def test_indoor_like_gallery():
    # Indoor search: gallery cams 1, 2 only; cam3 queries see cam1 only.
    rng = np.random.default_rng(8)
    dist, qp, gp, qc, gc = _random_problem(rng, 60, 40, 10, g_cam_choices=(1, 2))
    ref = _brute(dist, qp, gp, qc, gc)
    _assert_close(M.eval_sysu(dist, qp, gp, qc, gc), ref)
    # cam6 queries are unaffected by the rule; cam3 queries only keep cam1 entries.
    cam1 = gc == 1
    q3 = qc == 3
    sub = _brute(dist[q3][:, cam1], qp[q3], gp[cam1], unique=True, max_rank=20)
    ranks_sub = M.rank_matches(dist[q3], qp[q3], gp, qc[q3], gc)
    np.testing.assert_allclose(np.nanmean(ranks_sub.ap[ranks_sub.valid]), sub[1], atol=1e-12)


# --------------------------------------------------------------------------------------------------
# Camera rule, ties, CMC variants


def test_cam3_removes_all_cam2_entries_whatever_the_id():
    # Query id 1 from cam3. Gallery: cam2 holds the true match AND a closer wrong id; cam4 holds a
    # worse match.
    dist = np.array([[0.1, 0.2, 0.3, 0.9]])
    g_pids = np.array([7, 1, 5, 1])
    g_cams = np.array([2, 2, 4, 5])
    cmc3, ap3, inp3 = M.eval_sysu(dist, np.array([1]), g_pids, np.array([3]), g_cams, max_rank=4)
    # Filtered list = [5 (cam4), 1 (cam5)]: first and only positive at rank 2.
    assert ap3 == pytest.approx(0.5)
    assert inp3 == pytest.approx(0.5)
    np.testing.assert_array_equal(cmc3, [0, 1, 1, 1])
    # The same query from cam6 keeps everything: positives at ranks 2 and 4.
    cmc6, ap6, inp6 = M.eval_sysu(dist, np.array([1]), g_pids, np.array([6]), g_cams, max_rank=4)
    assert ap6 == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert inp6 == pytest.approx(2 / 4)
    np.testing.assert_array_equal(cmc6, [0, 1, 1, 1])


def test_cam3_query_with_only_cam2_match_is_invalid():
    dist = np.array([[0.1, 0.2], [0.1, 0.2]])
    g_pids = np.array([1, 2])
    g_cams = np.array([2, 4])
    ranks = M.rank_matches(dist, np.array([1, 2]), g_pids, np.array([3, 3]), g_cams)
    np.testing.assert_array_equal(ranks.valid, [False, True])
    cmc, mAP, _ = M.eval_sysu(dist, np.array([1, 2]), g_pids, np.array([3, 3]), g_cams)
    assert cmc[0] == 1.0 and mAP == 1.0
    with pytest.raises(ValueError, match='no valid query'):
        M.eval_sysu(dist[:1], np.array([1]), g_pids, np.array([3]), g_cams)


def test_ties_keep_gallery_order():
    # All distances equal: the stable sort ranks the gallery in index order [2, 1, 2, 1].
    dist = np.zeros((1, 4))
    cmc, mAP, mINP = M.eval_regdb(dist, np.array([1]), np.array([2, 1, 2, 1]), max_rank=4)
    np.testing.assert_array_equal(cmc, [0, 1, 1, 1])
    assert mAP == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert mINP == pytest.approx(2 / 4)
    # Reversing the gallery order moves the positives first.
    cmc_r, mAP_r, _ = M.eval_regdb(dist, np.array([1]), np.array([1, 2, 1, 2]), max_rank=4)
    assert cmc_r[0] == 1 and mAP_r == pytest.approx((1 + 2 / 3) / 2)


def test_ties_keep_gallery_order_on_long_rows():
    # Quantised distances (3 levels) on long rows, where numpy's default sort is not stable: the
    # result must follow gallery order inside each tie, as the brute force's stable sort does.
    rng = np.random.default_rng(14)
    dist = rng.integers(0, 3, (20, 300)).astype(float)
    qp, gp = rng.integers(0, 30, 20), rng.integers(0, 30, 300)
    qc, gc = rng.choice((3, 6), 20), rng.choice((1, 2, 4, 5), 300)
    assert (
        np.argsort(dist, axis=1) != np.argsort(dist, axis=1, kind='stable')
    ).any()  # ties matter here
    _assert_close(M.eval_sysu(dist, qp, gp, qc, gc), _brute(dist, qp, gp, qc, gc, unique=True))
    _assert_close(M.eval_regdb(dist, qp, gp), _brute(dist, qp, gp, unique=False))


def test_unique_id_cmc_differs_from_position_cmc():
    # A wrong id (5) occupies ranks 1-3; the true id is at rank 4, i.e. the 2nd distinct id.
    dist = np.array([[0.1, 0.2, 0.3, 0.4, 0.5]])
    q, g = np.array([0]), np.array([5, 5, 5, 0, 8])
    cams_q, cams_g = np.array([6]), np.array([1, 1, 4, 5, 5])
    pos, _, _ = M.eval_regdb(dist, q, g, max_rank=5)
    uniq, _, _ = M.eval_sysu(dist, q, g, cams_q, cams_g, max_rank=5)
    np.testing.assert_array_equal(pos, [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(uniq, [0, 1, 1, 1, 1])
    ranks = M.rank_matches(dist, q, g)
    assert ranks.first_rank[0] == 4 and ranks.first_unique_rank[0] == 2
    assert M.evaluate_regdb(dist, q, g).r1 == 0.0
    assert M.evaluate_sysu_trial(dist, q, g, cams_q, cams_g).r5 == 100.0


def test_perfect_distance_gives_100():
    rng = np.random.default_rng(9)
    qp = rng.integers(0, 12, 50)
    gp = np.repeat(np.arange(12), 3)
    dist = (qp[:, None] != gp[None, :]).astype(float)  # ties everywhere, positives strictly closer
    t = M.evaluate_regdb(dist, qp, gp)
    assert t.r1 == t.mAP == t.mINP == 100.0
    ts = M.evaluate_sysu_trial(dist, qp, gp, np.full(50, 6), np.full(36, 1))
    assert ts.r1 == ts.mAP == 100.0
    assert ts.n_valid_queries == 50


def test_small_gallery_caps_max_rank_and_pads():
    rng = np.random.default_rng(10)
    dist, qp, gp, qc, gc = _random_problem(rng, 20, 6, 3)
    cmc, _, _ = M.eval_sysu(dist, qp, gp, qc, gc)
    assert cmc.shape == (6,)
    t = M.evaluate_sysu_trial(dist, qp, gp, qc, gc)
    assert len(t.cmc) == 6
    assert t.r10 == t.r20 == pytest.approx(t.cmc[-1]) and t.r5 == pytest.approx(t.cmc[4])
    # Each query has at most 3 distinct ids, so its unique-id CMC reaches 1 by rank 3 and stays
    # there.
    assert cmc[2] == pytest.approx(1.0) and np.all(cmc[2:] == cmc[2])


def test_typed_api_agrees_with_legacy():
    rng = np.random.default_rng(11)
    dist, qp, gp, qc, gc = _random_problem(rng, 40, 90, 20)
    cmc, mAP, mINP = M.eval_sysu(dist, qp, gp, qc, gc)
    t = M.evaluate_sysu_trial(dist, qp, gp, qc, gc)
    np.testing.assert_allclose(np.array(t.cmc) / 100, cmc, atol=1e-6)
    assert (t.r1, t.r5, t.r10, t.r20) == pytest.approx(
        tuple(100 * cmc[[0, 4, 9, 19]].astype(float)), abs=1e-4
    )
    assert t.mAP == pytest.approx(100 * mAP) and t.mINP == pytest.approx(100 * mINP)


# --------------------------------------------------------------------------------------------------
# Errors


def test_shape_errors():
    dist = np.zeros((3, 4))
    with pytest.raises(ValueError, match='q_pids has 2 entries'):
        M.eval_regdb(dist, np.arange(2), np.arange(4))
    with pytest.raises(ValueError, match='g_pids has 5 entries'):
        M.eval_regdb(dist, np.arange(3), np.arange(5))
    with pytest.raises(ValueError, match='g_camids has 3 entries'):
        M.eval_sysu(dist, np.arange(3), np.arange(4), np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match='2-D'):
        M.eval_regdb(np.zeros(4), np.arange(1), np.arange(4))
    with pytest.raises(ValueError, match='NaN'):
        M.eval_regdb(np.full((3, 4), np.nan), np.arange(3), np.arange(4))


def test_no_valid_query_raises():
    with pytest.raises(ValueError, match='no valid query'):
        M.eval_regdb(np.random.default_rng(0).random((3, 4)), np.array([7, 8, 9]), np.arange(4))


# --------------------------------------------------------------------------------------------------
# Aggregation and distances


def test_summarize_mean_std_and_json():
    rng = np.random.default_rng(12)
    trials = []
    for _ in range(3):
        dist, qp, gp, qc, gc = _random_problem(rng, 30, 60, 10)
        trials.append(M.evaluate_sysu_trial(dist, qp, gp, qc, gc))
    res = M.summarize(trials)
    r1 = [t.r1 for t in trials]
    m = sum(r1) / 3
    assert res.mean['R1'] == pytest.approx(m)
    assert res.std['R1'] == pytest.approx((sum((x - m) ** 2 for x in r1) / 3) ** 0.5)  # ddof=0
    assert res.mean['mINP'] == pytest.approx(sum(t.mINP for t in trials) / 3)
    assert res.cmc_mean[7] == pytest.approx(sum(t.cmc[7] for t in trials) / 3)
    d = json.loads(json.dumps(res.to_dict()))
    assert set(d) == {'per_trial', 'mean', 'std', 'cmc'}
    assert set(d['mean']) == set(M.METRIC_KEYS)
    assert d['per_trial'][1]['n_valid_queries'] == trials[1].n_valid_queries
    with pytest.raises(ValueError, match='at least one'):
        M.summarize([])


def test_pairwise_distance():
    rng = np.random.default_rng(13)
    q, g = rng.normal(size=(5, 8)), rng.normal(size=(7, 8))
    cos = M.pairwise_distance(q, g)
    ref = np.array([[1 - a @ b / np.linalg.norm(a) / np.linalg.norm(b) for b in g] for a in q])
    np.testing.assert_allclose(cos, ref, atol=1e-12)
    assert cos.dtype == np.float64
    euc = M.pairwise_distance(q.astype(np.float32), g, metric='euclidean')
    np.testing.assert_allclose(
        euc, [[np.sum((a - b) ** 2) for b in g] for a in q.astype(np.float32)], atol=1e-9
    )
    # Ranking-equivalent to AGW's -q @ g.T on normalised features.
    qn, gn = (
        q / np.linalg.norm(q, axis=1, keepdims=True),
        g / np.linalg.norm(g, axis=1, keepdims=True),
    )
    np.testing.assert_array_equal(np.argsort(cos, axis=1), np.argsort(-qn @ gn.T, axis=1))
    # DEEN's test.py ranks by -q @ g.T on raw (unnormalised) features.
    np.testing.assert_array_equal(M.pairwise_distance(q, g, 'inner_product'), -(q @ g.T))
    with pytest.raises(ValueError, match='cosine, euclidean'):
        M.pairwise_distance(q, g, metric='manhattan')
    with pytest.raises(ValueError, match='dimensions differ'):
        M.pairwise_distance(q, g[:, :4])
