"""protocols.evaluation: protocol dicts, test records, one feature matrix -> every setting's
metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import protocols.evaluation as evaluation
from protocols.datasets.base import ImageRecord
from protocols.datasets.regdb import RegDB
from protocols.datasets.sysu import SYSUMM01
from protocols.evaluation import (
    REGDB_PROTOCOL,
    SYSU_PROTOCOL,
    check_protocol,
    evaluate,
    settings,
    test_records,
)
from protocols.trials import load_rand_perm, official_gallery


def one_hot(records: list[ImageRecord]) -> np.ndarray:
    pids = sorted({r.pid for r in records})
    return np.eye(len(pids))[[pids.index(r.pid) for r in records]]


def brute_force(q_feat, q_pids, q_cams, g_feat, g_pids, g_cams, sysu: bool) -> tuple[float, float]:
    """R1 and mAP (percent) by the protocol text, one query at a time, cosine distance."""
    qn = q_feat / np.linalg.norm(q_feat, axis=1, keepdims=True)
    gn = g_feat / np.linalg.norm(g_feat, axis=1, keepdims=True)
    hits, aps = [], []
    for i in range(len(q_pids)):
        keep = ~((q_cams[i] == 3) & (g_cams == 2)) if sysu else np.ones(len(g_pids), bool)
        dist = 1 - gn[keep] @ qn[i]
        ranked = g_pids[keep][np.argsort(dist, kind='stable')]
        good = ranked == q_pids[i]
        if not good.any():
            continue
        hits.append(ranked[0] == q_pids[i])
        pos = np.flatnonzero(good)
        aps.append(np.mean([(k + 1) / (p + 1) for k, p in enumerate(pos)]))
    return 100 * float(np.mean(hits)), 100 * float(np.mean(aps))


# --------------------------------------------------------------------------------------------------
# Protocol dicts


def test_check_protocol_defaults_and_errors() -> None:
    assert check_protocol('sysu', None) == {**SYSU_PROTOCOL}
    assert check_protocol('regdb', {'split': 3})['split'] == 3
    assert settings('sysu') == ['all-single', 'all-multi', 'indoor-single', 'indoor-multi']
    assert settings('sysu', dict(modes=['indoor'], shots=[10])) == ['indoor-multi']
    assert settings('regdb') == ['v2t', 't2v']
    bad = [
        ('sysu', dict(mode='all'), 'unknown key'),
        ('sysu', dict(modes=('outdoor',)), 'modes'),
        ('sysu', dict(shots=(1, 5)), 'shots'),
        ('sysu', dict(trials=0), 'trials'),
        ('sysu', dict(trials=11), 'trials'),
        ('sysu', dict(sampler='agw'), 'sampler'),
        ('sysu', dict(max_rank=0), 'max_rank'),
        ('sysu', dict(dataset='regdb'), 'protocol is for'),
        ('regdb', dict(split=11), 'split'),
        ('regdb', dict(directions=('v2t', 'v2t')), 'directions'),
        ('regdb', dict(modes=('all',)), 'unknown key'),
        ('market', {}, 'unknown dataset'),
    ]
    for dataset, protocol, match in bad:
        with pytest.raises(ValueError, match=match):
            check_protocol(dataset, protocol)


def test_test_records(sysu_root: Path, regdb_root: Path) -> None:
    ds = SYSUMM01(sysu_root)
    recs = test_records('sysu', sysu_root, SYSU_PROTOCOL)
    assert recs == ds.query_records() + ds.gallery_candidates()
    assert len({r.path for r in recs}) == len(recs)
    # Indoor search alone needs the queries and the cam 1, 2 gallery only (as AGW's indoor test).
    indoor = test_records('sysu', sysu_root, dict(modes=('indoor',)))
    assert indoor == ds.query_records() + [r for r in ds.gallery_candidates() if r.cam in (1, 2)]
    rd = RegDB(regdb_root)
    assert test_records('regdb', regdb_root, dict(split=4)) == rd.test_visible(4) + rd.test_thermal(
        4
    )


# --------------------------------------------------------------------------------------------------
# SYSU


def test_sysu_perfect_features(sysu_root: Path) -> None:
    recs = test_records('sysu', sysu_root, SYSU_PROTOCOL)
    results = evaluate('sysu', sysu_root, SYSU_PROTOCOL, recs, one_hot(recs))
    assert list(results) == ['all-single', 'all-multi', 'indoor-single', 'indoor-multi']
    for result in results.values():
        assert len(result.per_trial) == 10
        assert all(v == pytest.approx(100.0) for v in result.mean.values())


def test_sysu_one_extraction_one_distance(sysu_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recs = test_records('sysu', sysu_root, SYSU_PROTOCOL)
    rng = np.random.default_rng(0)
    table = rng.normal(size=(len(recs), 16))
    calls = []

    def extract(i: int) -> np.ndarray:  # stands in for a model forward pass
        calls.append(i)
        return table[i]

    features = np.stack([extract(i) for i in range(len(recs))])
    dist_calls = []
    real = evaluation.pairwise_distance
    monkeypatch.setattr(
        evaluation,
        'pairwise_distance',
        lambda q, g, m: dist_calls.append((q.shape, g.shape)) or real(q, g, m),
    )
    results = evaluate('sysu', sysu_root, SYSU_PROTOCOL, recs, features)
    assert len(calls) == len(recs)  # every image once, 4 settings x 10 trials reuse them
    ds = SYSUMM01(sysu_root)
    assert dist_calls == [((len(ds.query_records()), 16), (len(ds.gallery_candidates()), 16))]
    assert sum(len(r.per_trial) for r in results.values()) == 40


def test_sysu_trial_matches_brute_force_and_ignores_record_order(sysu_root: Path) -> None:
    ds = SYSUMM01(sysu_root)
    recs = test_records('sysu', sysu_root, SYSU_PROTOCOL)
    feats = np.random.default_rng(1).normal(size=(len(recs), 8))
    protocol = dict(modes=('all',), shots=(1,), trials=3)
    results = evaluate('sysu', sysu_root, protocol, recs, feats)['all-single']

    row = {r.path: i for i, r in enumerate(recs)}
    query = ds.query_records()
    cand = ds.gallery_candidates()
    perm = load_rand_perm(ds.rand_perm_path)
    for trial in range(3):
        gal = [cand[i] for i in official_gallery(ds, perm, 'all', 1, trial)]
        r1, m_ap = brute_force(
            feats[[row[r.path] for r in query]],
            np.array([r.pid for r in query]),
            np.array([r.cam for r in query]),
            feats[[row[r.path] for r in gal]],
            np.array([r.pid for r in gal]),
            np.array([r.cam for r in gal]),
            sysu=True,
        )
        assert results.per_trial[trial].mAP == pytest.approx(m_ap)
        assert results.per_trial[trial].r1 == pytest.approx(r1)

    # Any order, plus unrelated extra rows: same numbers (features are looked up by path).
    order = np.random.default_rng(2).permutation(len(recs))
    extra = [ImageRecord('cam1/9999/0001.jpg', 9999, 1, 0)]
    shuffled = [recs[i] for i in order] + extra
    again = evaluate(
        'sysu', sysu_root, protocol, shuffled, np.vstack([feats[order], np.ones((1, 8))])
    )
    assert again['all-single'].mean == results.mean


def test_sysu_seeded_sampler_runs(sysu_root: Path) -> None:
    recs = test_records('sysu', sysu_root, SYSU_PROTOCOL)
    protocol = dict(sampler='seeded', modes=('indoor',), shots=(1,))
    results = evaluate(
        'sysu', sysu_root, protocol, [r.path for r in recs], one_hot(recs), distance='euclidean'
    )
    assert list(results) == ['indoor-single'] and results['indoor-single'].mean[
        'R1'
    ] == pytest.approx(100.0)


def test_evaluate_input_errors(sysu_root: Path) -> None:
    recs = test_records('sysu', sysu_root, SYSU_PROTOCOL)
    feats = one_hot(recs)
    with pytest.raises(ValueError, match='no feature for 1 query'):
        evaluate('sysu', sysu_root, SYSU_PROTOCOL, recs[1:], feats[1:])
    nan = feats.copy()
    nan[[4, 9]] = np.nan
    with pytest.raises(ValueError, match=r'NaN/inf in 2 row\(s\): 4 .*, 9 '):
        evaluate('sysu', sysu_root, SYSU_PROTOCOL, recs, nan)
    with pytest.raises(ValueError, match='rows but'):
        evaluate('sysu', sysu_root, SYSU_PROTOCOL, recs, feats[:-1])
    with pytest.raises(ValueError, match='2-D'):
        evaluate('sysu', sysu_root, SYSU_PROTOCOL, recs, feats.ravel())
    with pytest.raises(ValueError, match='appears twice'):
        evaluate('sysu', sysu_root, SYSU_PROTOCOL, recs + recs[:1], np.vstack([feats, feats[:1]]))
    with pytest.raises(ValueError, match='distance'):
        evaluate('sysu', sysu_root, SYSU_PROTOCOL, recs, feats, distance='manhattan')


# --------------------------------------------------------------------------------------------------
# RegDB


def test_regdb_both_directions(regdb_root: Path) -> None:
    protocol = dict(REGDB_PROTOCOL, split=2)
    recs = test_records('regdb', regdb_root, protocol)
    perfect = evaluate('regdb', regdb_root, protocol, recs, one_hot(recs))
    assert list(perfect) == ['v2t', 't2v']
    assert all(v == pytest.approx(100.0) for r in perfect.values() for v in r.mean.values())

    feats = np.random.default_rng(3).normal(size=(len(recs), 8))
    results = evaluate('regdb', regdb_root, protocol, recs, feats)
    rd = RegDB(regdb_root)
    vis, th = rd.test_visible(2), rd.test_thermal(2)
    fv, ft = feats[: len(vis)], feats[len(vis) :]
    pv, pt = np.array([r.pid for r in vis]), np.array([r.pid for r in th])
    ones_v, ones_t = np.ones(len(vis)), np.ones(len(th))
    for key, args in (
        ('v2t', (fv, pv, ones_v, ft, pt, 2 * ones_t)),
        ('t2v', (ft, pt, ones_t, fv, pv, 2 * ones_v)),
    ):
        r1, m_ap = brute_force(*args, sysu=False)
        assert len(results[key].per_trial) == 1
        assert results[key].mean['R1'] == pytest.approx(r1) and results[key].mean[
            'mAP'
        ] == pytest.approx(m_ap)
    assert results['v2t'].mean != results['t2v'].mean
