"""The demo config trains on synthetic SYSU-MM01 through the engine and beats its untrained model."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import methods.mpanet as mpanet
from harness.data.datasets import train_set
from harness.engine.config import load_config
from harness.engine import run as engine_run
from methods.mpanet.model import MPANet

DEMO = Path(mpanet.__file__).parent / 'configs' / 'mpanet_demo_sysu.py'


def mean_map(results: dict) -> float:
    """mAP averaged over the four SYSU settings (a single ~10-id gallery is a noisy score)."""
    return float(np.mean([r['mean']['mAP'] for r in results.values()]))


@pytest.mark.slow
def test_demo_training_beats_the_untrained_model(sysu_root, tmp_path):
    cfg = load_config(DEMO)
    num_classes = train_set('sysu', str(sysu_root), cfg.protocol).num_classes
    torch.manual_seed(0)
    untrained = MPANet(num_classes=num_classes, backbone=cfg.model.backbone)
    torch.save(untrained.state_dict(), tmp_path / 'untrained.pth')
    before = engine_run.score_checkpoint(str(DEMO), str(tmp_path / 'untrained.pth'), str(tmp_path / 'test0'),
                                        data_root=str(sysu_root), log_level='WARNING')
    record = engine_run.run_experiment(str(DEMO), str(tmp_path / 'run'), data_root=str(sysu_root), log_level='WARNING')
    assert record['status'] == 'done' and record['method'] == 'mpanet' and record['comparable']
    assert not record['optimistic'] and record['selection'] == 'final'
    assert set(record['results']) == {'all-single', 'all-multi', 'indoor-single', 'indoor-multi'}
    print(f'mean mAP untrained {mean_map(before["results"]):.2f} -> trained {mean_map(record["results"]):.2f}')
    assert mean_map(record['results']) > mean_map(before['results'])
