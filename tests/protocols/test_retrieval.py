"""Ranked lists (protocols.retrieval) are the metrics' ranking: gallery, order, cam rule, ties."""

from __future__ import annotations

import numpy as np
import pytest

from protocols.datasets import load_dataset
from protocols.evaluation import evaluate, test_records
from protocols.metrics import pairwise_distance
from protocols.retrieval import retrieval_setting
from protocols.trials import sysu_galleries


def _features(n: int, seed: int, ties: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if ties:  # few distinct vectors: many exactly equal distances
        return rng.integers(0, 2, size=(n, 3)).astype(np.float64) + np.array([1.0, 0.0, 0.0])
    return rng.normal(size=(n, 16))


def _reference_order(
    dist_row: np.ndarray, q_cam: int | None, g_cams: np.ndarray | None
) -> list[int]:
    """Written from the protocol's definition: ascending distance, ties by gallery position, and a
    camera-3 query never sees a camera-2 gallery image."""
    order = np.lexsort((np.arange(dist_row.size), dist_row))
    return [int(j) for j in order if not (q_cam == 3 and g_cams[j] == 2)]


def _ap(correct: np.ndarray) -> float:
    pos = np.flatnonzero(correct) + 1
    return float(np.mean(np.arange(1, pos.size + 1) / pos))


@pytest.mark.parametrize('ties', [False, True])
def test_sysu_lists_are_the_metrics_ranking(sysu_root, ties):
    ds = load_dataset('sysu', sysu_root)
    records = test_records(ds, None)
    feats = _features(len(records), seed=1, ties=ties)
    s = retrieval_setting(ds, None, None, records, feats, mode='all', shots=1, trial=2)
    cands = ds.gallery_candidates()
    drawn = sysu_galleries(ds, 'all', 1, 'official', trials=3)[2]
    assert s.gallery == tuple(cands[i] for i in drawn) and s.query == tuple(ds.query_records())
    rows = {r.path: i for i, r in enumerate(records)}
    expected = pairwise_distance(
        feats[[rows[r.path] for r in s.query]], feats[[rows[r.path] for r in cands]]
    )
    np.testing.assert_array_equal(s.distmat, expected[:, drawn])

    ranks = s.query_ranks()
    lists = s.ranked(range(len(s.query)))
    g_cams = np.array([r.cam for r in s.gallery])
    g_pids = np.array([r.pid for r in s.gallery])
    aps = []
    for r in lists:
        q = s.query[r.query]
        assert r.gallery.tolist() == _reference_order(s.distmat[r.query], q.cam, g_cams)
        np.testing.assert_array_equal(r.correct, g_pids[r.gallery] == q.pid)
        assert (np.diff(r.distances) >= 0).all()
        assert r.first_match == ranks.first_rank[r.query]
        if ranks.valid[r.query]:
            assert _ap(r.correct) == pytest.approx(ranks.ap[r.query], abs=1e-12)
            aps.append(_ap(r.correct))
    assert (
        any(s.query[r.query].cam == 3 for r in lists) and (g_cams == 2).any()
    )  # the rule was exercised
    trial = evaluate(ds, None, dict(modes=('all',), shots=(1,), trials=3), records, feats)[
        'all-single'
    ]
    assert np.mean(aps) * 100 == pytest.approx(trial.per_trial[2].mAP, abs=1e-9)

    top = s.ranked([0, 5], topk=4)
    assert [len(r.gallery) for r in top] == [4, 4] and top[1].first_match == lists[5].first_match


def test_regdb_directions_and_option_errors(regdb_root):
    ds = load_dataset('regdb', regdb_root)
    protocol = dict(split=2)
    records = test_records(ds, None, protocol)
    feats = _features(len(records), seed=2, ties=False)
    v2t = retrieval_setting(ds, None, protocol, records, feats, direction='v2t')
    t2v = retrieval_setting(ds, None, protocol, records, feats, direction='t2v')
    assert v2t.trial == 2 and t2v.setting == 't2v'
    assert {r.path.split('/')[0] for r in t2v.query} == {'Thermal'}
    assert {r.path.split('/')[0] for r in t2v.gallery} == {'Visible'}
    np.testing.assert_array_equal(t2v.distmat, v2t.distmat.T)
    lists = t2v.ranked(range(len(t2v.query)))
    for r in lists[:20]:
        assert r.gallery.tolist() == _reference_order(t2v.distmat[r.query], None, None)
    result = evaluate(ds, None, dict(split=2, directions=('t2v',)), records, feats)['t2v']
    assert np.mean([_ap(r.correct) for r in lists]) * 100 == pytest.approx(
        result.mean['mAP'], abs=1e-9
    )
    with pytest.raises(ValueError, match='direction'):
        retrieval_setting(ds, None, protocol, records, feats, direction='sideways')
    with pytest.raises(ValueError, match='out of range'):
        v2t.ranked([len(v2t.query)])
