"""Engine behaviour on the toy plugin: plugins, protocol guard, resume, batches, one extraction."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.engine.config import ProtocolChangeError, load_config, protocol_changes
from harness.engine.run import build_runner, run_experiment
from harness.errors import RunFailed

TOY_CONFIGS = (
    Path(__file__).resolve().parents[1] / 'fixtures' / 'toy_plugin' / 'vireid_toy' / 'configs'
)
TOY_SYSU, TOY_REGDB = TOY_CONFIGS / 'toy_sysu.py', TOY_CONFIGS / 'toy_regdb.py'
FAST = {'train_cfg.max_epochs': 1, 'sampler.num_instances': 8, 'train_dataloader.batch_size': 64}


def test_external_plugin_is_listed_and_trains(toy_plugin, sysu_root, tmp_path):
    assert 'toy' in toy_plugin and toy_plugin['toy'].distribution == 'vireid-toy 0.1'
    out = subprocess.run(
        [sys.executable, '-m', 'harness.cli', 'methods'], capture_output=True, text=True, check=True
    ).stdout
    assert 'toy' in out and 'ToyNet' in out and 'vireid-toy 0.1' in out and 'agw' in out
    record = run_experiment(
        str(TOY_SYSU),
        str(tmp_path / 'run'),
        data_root=str(sysu_root),
        cfg_options=FAST,
        log_level='WARNING',
    )
    assert record['status'] == 'done' and record['method'] == 'toy' and record['comparable']
    assert set(record['results']) == {'all-single', 'all-multi', 'indoor-single', 'indoor-multi'}
    assert all(len(r['per_trial']) == 10 for r in record['results'].values())
    on_disk = json.loads((tmp_path / 'run' / 'record.json').read_text())
    assert on_disk['results'] == json.loads(json.dumps(record['results']))
    prov = on_disk['provenance']
    for key in ('git_commit', 'versions', 'seed', 'device', 'dataset_fingerprint', 'wall_time_s'):
        assert prov[key] not in (None, ''), key
    assert (tmp_path / 'run' / 'config.py').is_file()
    # The run kept its progress file up to date: the last epoch's end, then the test.
    from harness.engine.progress import read_progress

    prog = read_progress(tmp_path / 'run')
    assert prog['stage'] == 'test' and prog['epoch'] == prog['max_epochs'] == 1
    assert prog['iters_per_epoch'] > 0
    assert prog['global_iter'] == prog['max_iters'] == prog['iters_per_epoch']


def test_protocol_override_is_refused_with_the_field_named(toy_plugin, sysu_root, tmp_path):
    cfg = load_config(TOY_SYSU, {'protocol.trials': 3})
    assert protocol_changes(cfg) == {'protocol.trials': (10, 3)}
    with pytest.raises(ProtocolChangeError, match=r'protocol\.trials: protocol 10 -> config 3'):
        run_experiment(
            str(TOY_SYSU),
            str(tmp_path / 'x'),
            data_root=str(sysu_root),
            cfg_options={'protocol.trials': 3},
        )
    # A method may not quietly change what is logged/saved or the seed either.
    assert 'randomness.seed' in protocol_changes(load_config(TOY_SYSU, {'randomness.seed': 5}))
    # data_root and the RegDB split are free; selection is allowed but labelled optimistic.
    assert protocol_changes(load_config(TOY_REGDB, {'protocol.split': 4, 'data_root': '/x'})) == {}
    record = run_experiment(
        str(TOY_SYSU),
        str(tmp_path / 'y'),
        data_root=str(sysu_root),
        cfg_options={**FAST, 'protocol.trials': 2},
        allow_protocol_change=True,
        log_level='WARNING',
    )
    assert record['comparable'] is False and len(record['results']['all-single']['per_trial']) == 2


class Killed(Exception):
    pass


def test_killed_run_resumes_to_the_uninterrupted_result(
    toy_plugin, sysu_root, tmp_path, monkeypatch
):
    opts = {
        'train_cfg.max_epochs': 2,
        'sampler.num_instances': 8,
        'train_dataloader.batch_size': 64,
        'train_pipeline': [
            dict(type='RandomHorizontalFlip'),
            dict(type='Pad', padding=2),
            dict(type='RandomCrop'),
            dict(type='RandomErasing', p=0.5),
        ],
    }
    full = run_experiment(
        str(TOY_SYSU),
        str(tmp_path / 'full'),
        data_root=str(sysu_root),
        cfg_options=opts,
        log_level='WARNING',
    )
    # Killed right after epoch_1.pth is written, with the same config (a hook added by config
    # would make it another config, which the resume rightly refuses).
    from mmengine.hooks import CheckpointHook

    def after_train_epoch(self, runner) -> None:
        save_epoch_checkpoint(self, runner)
        raise Killed()

    save_epoch_checkpoint = CheckpointHook.after_train_epoch
    killed = pytest.raises(RunFailed, match='epoch_1.pth is kept')
    with killed as failed, monkeypatch.context() as m:
        m.setattr(CheckpointHook, 'after_train_epoch', after_train_epoch)
        run_experiment(
            str(TOY_SYSU),
            str(tmp_path / 'killed'),
            data_root=str(sysu_root),
            cfg_options=opts,
            log_level='WARNING',
        )
    assert isinstance(failed.value.cause, Killed)
    assert json.loads((tmp_path / 'killed' / 'record.json').read_text())['status'] == 'failed'
    resumed = run_experiment(
        str(TOY_SYSU),
        str(tmp_path / 'killed'),
        data_root=str(sysu_root),
        cfg_options=opts,
        resume=True,
        log_level='WARNING',
    )
    a = torch.load(tmp_path / 'full' / 'epoch_2.pth', weights_only=True)['state_dict']
    b = torch.load(tmp_path / 'killed' / 'epoch_2.pth', weights_only=True)['state_dict']
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed['results'] == full['results']


def test_training_batches_hold_p_ids_times_k_visible_plus_k_infrared(
    toy_plugin, sysu_root, tmp_path
):
    cfg = load_config(TOY_SYSU, {'data_root': str(sysu_root)})
    runner = build_runner(cfg, tmp_path, log_level='WARNING')
    p, k = cfg.sampler['num_ids'], cfg.sampler['num_instances']
    for n, batch in enumerate(runner.train_dataloader):
        labels, modality = batch['data_samples']['label'], batch['data_samples']['modality']
        assert len(labels) == 2 * p * k
        assert (modality[: p * k] == 0).all() and (modality[p * k :] == 1).all()
        vis, ir = labels[: p * k].view(p, k), labels[p * k :].view(p, k)
        assert (
            (vis == vis[:, :1]).all() and torch.equal(vis, ir) and len(set(vis[:, 0].tolist())) == p
        )
        if n == 5:
            break


def test_one_feature_extraction_serves_every_trial_and_setting(toy_plugin, sysu_root, tmp_path):
    cfg = load_config(TOY_SYSU, {'data_root': str(sysu_root)})
    runner = build_runner(cfg, tmp_path, train=False, resume=False, log_level='WARNING')
    seen = []
    model = runner.model
    original = model.extract_feat

    def counting(images, modality):
        seen.append((len(images), modality))
        return original(images, modality)

    model.extract_feat = counting
    metrics = runner.test()
    n_images = len(runner.test_dataloader.dataset)
    assert sum(n for n, _ in seen) == n_images  # every image exactly once
    assert len(seen) == len(runner.test_dataloader)
    results = runner.test_evaluator.metrics[0].results_by_setting
    assert len(results) == 4 and all(len(r.per_trial) == 10 for r in results.values())
    assert np.isfinite(metrics['reid/all-single/mAP'])


def test_best_epoch_by_test_rank1_is_available_but_labelled_optimistic(
    toy_plugin, sysu_root, tmp_path
):
    record = run_experiment(
        str(TOY_SYSU),
        str(tmp_path / 'run'),
        data_root=str(sysu_root),
        log_level='WARNING',
        cfg_options={
            **FAST,
            'train_cfg.max_epochs': 2,
            'selection': dict(rule='best-test-rank1', epochs=[1, 2]),
        },
    )
    assert record['status'] == 'done' and record['optimistic'] is True
    assert record['selection'] == 'best-test-rank1' and record['comparable']
    assert list((tmp_path / 'run').glob('best_reid_selection_score_epoch_*.pth'))
    with pytest.raises(ValueError, match='selection.rule'):
        load_config(TOY_SYSU, {'selection': dict(rule='best-of-everything')})
