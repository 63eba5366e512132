"""The AGW demo config trains through the engine on the synthetic SYSU-MM01 and beats the untrained model."""
from pathlib import Path

import pytest
import torch

from harness.data.datasets import train_set
from harness.engine.config import load_config
from harness.engine import run as engine
from methods.agw.model import AGW

DEMO = Path(__file__).parents[3] / 'methods' / 'agw' / 'configs' / 'agw_demo_sysu.py'


@pytest.mark.slow
def test_demo_config_trains_and_beats_the_untrained_model(sysu_root, tmp_path):
    cfg = load_config(DEMO)
    num_classes = train_set('sysu', sysu_root, cfg.protocol).num_classes
    torch.manual_seed(0)
    untrained = AGW(num_classes=num_classes, **{k: v for k, v in cfg.model.items() if k != 'type'})
    torch.save(untrained.state_dict(), tmp_path / 'untrained.pth')
    before = engine.score_checkpoint(str(DEMO), str(tmp_path / 'untrained.pth'), str(tmp_path / 'untrained'),
                                    data_root=str(sysu_root), log_level='WARNING')['results']

    record = engine.run_experiment(str(DEMO), str(tmp_path / 'run'), data_root=str(sysu_root),
                                   log_level='WARNING')
    assert record['status'] == 'done' and record['method'] == 'agw' and record['comparable']
    after = record['results']
    settings = ('all-single', 'all-multi', 'indoor-single', 'indoor-multi')
    gain = {s: after[s]['mean']['mAP'] - before[s]['mean']['mAP'] for s in settings}
    # a few CPU epochs from scratch: clearly better on average, and better in each single-shot setting
    assert sum(gain.values()) / len(gain) > 3.0, gain
    assert gain['all-single'] > 0 and gain['indoor-single'] > 0, gain
