"""The demo config trains through the engine on the synthetic SYSU-MM01 and beats the untrained model."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.data.datasets import train_set
from harness.engine.config import load_config
from harness.engine import run as engine
from methods.mmn.model import MMN

DEMO = Path(__file__).parents[3] / 'methods' / 'mmn' / 'configs' / 'mmn_demo_sysu.py'
# Two epochs keep the test to a few minutes on 2 shared cores (every epoch runs ~2N real + 2N M images).
SHORT = {'train_cfg.max_epochs': 2}


@pytest.mark.slow
def test_demo_config_trains_and_beats_the_untrained_model(sysu_root, tmp_path):
    cfg = load_config(DEMO, SHORT)
    assert cfg.model['type'] == 'MMN' and cfg.model['backbone']['blocks'] == (1, 1, 1, 1)
    num_classes = train_set('sysu', sysu_root, cfg.protocol).num_classes
    torch.manual_seed(0)
    untrained = MMN(num_classes=num_classes, **{k: v for k, v in cfg.model.items() if k != 'type'})
    torch.save(untrained.state_dict(), tmp_path / 'untrained.pth')
    before = engine.score_checkpoint(str(DEMO), str(tmp_path / 'untrained.pth'), str(tmp_path / 'untrained'),
                                    data_root=str(sysu_root), log_level='WARNING')['results']

    record = engine.run_experiment(str(DEMO), str(tmp_path / 'run'), data_root=str(sysu_root),
                                   cfg_options=SHORT, log_level='WARNING')
    assert record['status'] == 'done' and record['method'] == 'mmn' and record['comparable']
    assert not record['optimistic'] and record['selection'] == 'final'
    after = record['results']
    print('MMN demo mAP before/after:', {k: (round(before[k]['mean']['mAP'], 2), round(after[k]['mean']['mAP'], 2))
                                         for k in after})
    for setting in ('all-single', 'indoor-single'):
        assert after[setting]['mean']['mAP'] > before[setting]['mean']['mAP'] + 1.0, \
            (setting, before[setting]['mean'], after[setting]['mean'])
