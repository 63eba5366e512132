"""The metrics benchmark at tiny size: both implementations agree, disagreement is detected, CLI wiring."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from harness.bench import BENCHMARKS, load_benchmark
from harness.bench import metrics as bench
from harness.cli import bench as cli_bench
from protocols import metrics as M

TINY = dict(n_query=60, n_gallery_candidates=150, dim=16, trials=2, seed=3)


def test_run_tiny_agrees_and_reports():
    result = bench.run(**TINY, verbose=False)
    assert result['max_abs_diff'] <= 1e-6
    assert result['config']['trials'] == 2
    assert set(result['seconds']) >= {'ours_metrics', 'ref_metrics', 'ours_total', 'ref_total'}
    assert result['speedup_metrics'] > 0 and 0 <= result['mean_R1'] <= 100
    json.dumps(result)  # JSON-able for --json


def test_reference_matches_vectorised_metrics_on_sysu_like_draws():
    p = bench.make_problem(80, 200, 16, seed=5)
    for idx in bench.draw_single_shot(p['g_pids'], p['g_cams'], trials=2, seed=5):
        # One gallery item per (pid, cam) pair.
        pairs = set(zip(p['g_pids'][idx].tolist(), p['g_cams'][idx].tolist()))
        assert len(pairs) == idx.size
        dist = M.pairwise_distance(p['q_feat'], p['g_feat'][idx])
        args = (dist, p['q_pids'], p['g_pids'][idx], p['q_cams'], p['g_cams'][idx])
        assert bench.max_abs_difference(M.eval_sysu(*args), bench.agw_reference_eval_sysu(*args)) <= 1e-6


def test_equality_check_detects_a_difference():
    p = bench.make_problem(40, 120, 8, seed=1)
    idx = bench.draw_single_shot(p['g_pids'], p['g_cams'], trials=1, seed=1)[0]
    dist = M.pairwise_distance(p['q_feat'], p['g_feat'][idx])
    g_cams = p['g_cams'][idx]
    ours = M.eval_sysu(dist, p['q_pids'], p['g_pids'][idx], p['q_cams'], g_cams)
    # Without the camera rule (no cam 3 queries) the reference must give different numbers.
    ref = bench.agw_reference_eval_sysu(dist, p['q_pids'], p['g_pids'][idx], np.full(40, 6), g_cams)
    assert bench.max_abs_difference(ours, ref) > 1e-6
    assert bench.max_abs_difference((ours[0][:3], 0.0, 0.0), (ours[0], 0.0, 0.0)) == float('inf')


def test_registry_and_cli(tmp_path, capsys):
    assert load_benchmark('metrics') is bench
    assert set(BENCHMARKS) >= {'metrics'}
    with pytest.raises(KeyError, match='known: .*metrics'):
        load_benchmark('nope')

    parser = argparse.ArgumentParser(prog='vireid')
    cli_bench.register(parser.add_subparsers(dest='command'))
    out = tmp_path / 'sub' / 'bench.json'
    args = parser.parse_args(['bench', 'metrics', '--quick', '--json', str(out)])
    assert args.func(args) == 0
    data = json.loads(out.read_text())
    assert data['benchmark'] == 'metrics' and data['config']['n_query'] == bench.QUICK['n_query']
    assert data['max_abs_diff'] <= 1e-6
    assert 'speed-up' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        parser.parse_args(['bench', 'unknown'])
