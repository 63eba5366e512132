"""Test-time extraction keeps the device busy: asynchronous copies of pinned batches, metadata
kept on the host, features evaluated where the model left them; and the extraction benchmark's
wiring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.evaluator import BaseMetric

from harness.engine import metric as metric_module
from harness.engine.config import load_config
from harness.engine.metric import VIReIDMetric
from harness.engine.run import runner_config
from harness.models.data_preprocessor import ReIDDataPreprocessor
from protocols.evaluation import evaluate, test_records

TOY_SYSU = (
    Path(__file__).resolve().parents[1]
    / 'fixtures'
    / 'toy_plugin'
    / 'vireid_toy'
    / 'configs'
    / 'toy_sysu.py'
)


def test_test_batches_copy_only_images_to_the_device(monkeypatch):
    pre = ReIDDataPreprocessor()
    assert pre._non_blocking  # asynchronous from pinned memory: overlaps the previous batch
    cast = []
    real = pre.cast_data
    monkeypatch.setattr(pre, 'cast_data', lambda data: cast.append(data) or real(data))
    samples = dict(index=torch.arange(2), modality=torch.ones(2, dtype=torch.long))
    batch = dict(inputs=torch.full((2, 3, 4, 2), 255, dtype=torch.uint8), data_samples=samples)
    out = pre(batch, training=False)
    assert len(cast) == 1 and isinstance(cast[0], torch.Tensor)  # only the images travel
    assert out['data_samples'] is samples and out['inputs'].dtype == torch.float32
    pre(batch, training=True)
    assert (
        isinstance(cast[1], dict) and 'data_samples' in cast[1]
    )  # labels are needed on the device


def test_metric_scores_in_process_and_matches_the_protocol(sysu_root, monkeypatch):
    records = test_records('sysu', sysu_root, {'dataset': 'sysu'})
    feats = torch.from_numpy(
        np.random.default_rng(0).normal(size=(len(records), 8)).astype(np.float32)
    )
    metric = VIReIDMetric('sysu', str(sysu_root), {'dataset': 'sysu'})
    seen = []
    real = metric_module.evaluate
    monkeypatch.setattr(
        metric_module, 'evaluate', lambda *a, **k: seen.append(type(a[4])) or real(*a, **k)
    )
    # One process never goes through mmengine's gather-and-copy-to-CPU.
    monkeypatch.setattr(
        BaseMetric, 'evaluate', lambda self, size: pytest.fail('mmengine gather used')
    )
    order = np.random.default_rng(1).permutation(len(records))
    for start in range(0, len(order), 50):
        chunk = order[start : start + 50]
        metric.process({}, [dict(index=int(i), feat=feats[i]) for i in chunk])
    scores = metric.evaluate(len(records))
    assert seen == [np.ndarray]  # CPU features take the host path
    ref = evaluate('sysu', sysu_root, {'dataset': 'sysu'}, records, feats.numpy())
    assert scores['reid/all-single/R1'] == pytest.approx(ref['all-single'].mean['R1'])
    assert scores['reid/indoor-multi/mAP'] == pytest.approx(ref['indoor-multi'].mean['mAP'])
    assert metric.results == [] and set(metric.results_by_setting) == set(ref)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_metric_keeps_cuda_features_on_the_device(sysu_root, monkeypatch):
    records = test_records('sysu', sysu_root, {'dataset': 'sysu'})
    feats = torch.randn(len(records), 8, device='cuda')
    metric = VIReIDMetric('sysu', str(sysu_root), {'dataset': 'sysu'})
    seen = []
    real = metric_module.evaluate
    monkeypatch.setattr(
        metric_module, 'evaluate', lambda *a, **k: seen.append(a[4].device.type) or real(*a, **k)
    )
    metric.process({}, [dict(index=i, feat=feats[i]) for i in range(len(records))])
    metric.evaluate(len(records))
    assert seen == ['cuda']


def test_test_loader_follows_the_config(sysu_root):
    cfg = load_config(TOY_SYSU, {'data_root': str(sysu_root), 'test.batch_size': 24})
    loader = runner_config(cfg, '/tmp/unused', num_classes=3)['test_dataloader']
    assert loader['batch_size'] == 24 and loader['pin_memory'] == torch.cuda.is_available()
    assert loader['num_workers'] == (
        cfg.train_dataloader['num_workers'] if torch.cuda.is_available() else 0
    )
    cfg = load_config(TOY_SYSU, {'data_root': str(sysu_root), 'test.num_workers': 3})
    assert runner_config(cfg, '/tmp/unused', num_classes=3)['test_dataloader']['num_workers'] == 3


# AGW and MMN resize with PIL's LANCZOS: the reference pipeline must use the config's filter too
@pytest.mark.parametrize('resize_filter', ['bilinear', 'lanczos'])
def test_extraction_benchmark_runs_both_pipelines_on_the_same_images(
    toy_plugin, sysu_root, tmp_path, capsys, resize_filter
):
    from harness.bench import extract

    options = {'test.batch_size': 16, 'resize_filter': resize_filter}
    result = extract.run(
        TOY_SYSU, str(sysu_root), batches=2, options=options, work_dir=str(tmp_path)
    )
    assert result['ours_images_per_s'] > 0 and result['official_images_per_s'] > 0
    assert result['images_timed'] == 32 and result['batch_size'] == 16
    assert result['max_relative_feature_difference'] < 1e-4
    assert 'images/s' in capsys.readouterr().out


def test_extraction_benchmark_command_line(toy_plugin, sysu_root, tmp_path):
    import argparse
    import json

    from harness.cli import bench as cli_bench

    parser = argparse.ArgumentParser(prog='vireid')
    cli_bench.register(parser.add_subparsers(dest='command'))
    out = tmp_path / 'extract.json'
    args = parser.parse_args(['bench', 'extract', '--quick', '--json', str(out)])
    args.options = [str(TOY_SYSU), '--data-root', str(sysu_root), '--batches', '1']
    assert args.func(args) == 0
    data = json.loads(out.read_text())
    assert (
        data['benchmark'] == 'extract' and data['batch_size'] == 16 and data['images_timed'] == 16
    )
