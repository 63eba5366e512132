"""The metrics benchmark at tiny size: the stand-in has the real structure, both sides agree, a
disagreement is detected, CLI wiring. (Timings are never asserted.)"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from harness.bench import BENCHMARKS, load_benchmark
from harness.bench import metrics as bench
from harness.cli import bench as cli_bench
from protocols import counts
from protocols import metrics as M

TINY = dict(ids=8, dim=16, trials=2, regdb_ids=6, regdb_splits=1, seed=3)


def test_run_tiny_agrees_and_reports():
    result = bench.run(**TINY, verbose=False)
    for case in bench.CASES:
        assert result[case]['max_abs_diff'] <= 1e-6
        assert result[case]['speedup'] > 0 and result[case]['ours_cpu_s'] >= 0
    assert result['protocol']['target'] == 40 and result['single']['target'] == 30
    settings = {'all-single', 'all-multi', 'indoor-single', 'indoor-multi'}
    assert set(result['protocol']['mean_R1']) == settings
    assert len(result['load']['before']) == 3
    json.dumps(result)  # JSON-able for --json


def test_standin_has_the_real_sysu_test_structure():
    s = bench.sysu_standin(ids=96, dim=4, trials=2, seed=0)
    assert s['q_pids'].size == 3803 and s['c_pids'].size == 6775
    for cam, n in counts.SYSU_TEST_IMAGES.items():
        cams = s['q_cams'] if cam in (3, 6) else s['c_cams']
        assert int((cams == cam).sum()) == n
        ids = set((s['q_pids'] if cam in (3, 6) else s['c_pids'])[cams == cam].tolist())
        assert ids == set(counts.SYSU_TEST_IDS) - set(counts.SYSU_TEST_IDS_MISSING[cam])
    sizes = {k: {v.size for v in trials} for k, trials in s['galleries'].items()}
    assert sizes == {
        'all-single': {301},
        'all-multi': {3010},
        'indoor-single': {112},
        'indoor-multi': {1120},
    }
    for g in s['galleries']['all-single']:
        # One image per (camera, id), listed camera by camera like rand_perm_cam.
        pairs = list(zip(s['c_cams'][g].tolist(), s['c_pids'][g].tolist()))
        assert len(set(pairs)) == len(pairs) and pairs == sorted(pairs)
    assert not np.array_equal(s['galleries']['all-multi'][0], s['galleries']['all-multi'][1])
    np.testing.assert_allclose(np.linalg.norm(s['q_feat'], axis=1), 1.0)


def test_references_match_the_harness_metrics():
    s = bench.sysu_standin(ids=10, dim=16, trials=1, seed=5)
    for setting in ('all-multi', 'indoor-single'):
        g = s['galleries'][setting][0]
        dist = M.pairwise_distance(s['q_feat'], s['c_feat'][g])
        args = (dist, s['q_pids'], s['c_pids'][g], s['q_cams'], s['c_cams'][g])
        assert bench.max_abs_difference(M.eval_sysu(*args), bench.agw_eval_sysu(*args)) <= 1e-6
    r = bench.regdb_standin(ids=8, dim=16, seed=2)
    dist = M.pairwise_distance(r['visible'], r['thermal'])
    assert (
        bench.max_abs_difference(
            M.eval_regdb(dist, r['pids'], r['pids']),
            bench.agw_eval_regdb(dist, r['pids'], r['pids']),
        )
        <= 1e-6
    )


def test_equality_check_detects_a_difference():
    s = bench.sysu_standin(ids=6, dim=8, trials=1, seed=1)
    g = s['galleries']['all-single'][0]
    dist = M.pairwise_distance(s['q_feat'], s['c_feat'][g])
    ours = M.eval_sysu(dist, s['q_pids'], s['c_pids'][g], s['q_cams'], s['c_cams'][g])
    # Without the camera rule (no cam 3 queries) the reference must give different numbers.
    no_cam3 = np.full(s['q_pids'].size, 6)
    ref = bench.agw_eval_sysu(dist, s['q_pids'], s['c_pids'][g], no_cam3, s['c_cams'][g])
    assert bench.max_abs_difference(ours, ref) > 1e-6
    assert bench.max_abs_difference((ours[0][:3], 0.0, 0.0), (ours[0], 0.0, 0.0)) == float('inf')
    with pytest.raises(RuntimeError, match='disagree'):
        bench._case('single', bench._Clock(), bench._Clock(), 1e-3)
    with pytest.raises(ValueError, match='unknown case'):
        bench.run(**TINY, cases=('nope',), verbose=False)


def test_registry_and_cli(tmp_path, capsys, monkeypatch):
    assert load_benchmark('metrics') is bench
    assert set(BENCHMARKS) >= {'metrics'}
    with pytest.raises(KeyError, match='known: .*metrics'):
        load_benchmark('nope')
    monkeypatch.setattr(bench, 'QUICK', dict(TINY))
    parser = argparse.ArgumentParser(prog='vireid')
    cli_bench.register(parser.add_subparsers(dest='command'))
    out = tmp_path / 'sub' / 'bench.json'
    args = parser.parse_args(['bench', 'metrics', '--quick', '--json', str(out)])
    assert args.func(args) == 0
    data = json.loads(out.read_text())
    assert data['benchmark'] == 'metrics' and data['config']['ids'] == TINY['ids']
    assert data['single']['max_abs_diff'] <= 1e-6
    printed = capsys.readouterr().out
    assert 'speed-up' in printed and 'load average' in printed
    with pytest.raises(SystemExit):
        parser.parse_args(['bench', 'unknown'])
