"""The demo config trains through the harness engine on synthetic SYSU-MM01 and beats its own
untrained initialisation (same seed, same architecture)."""
from __future__ import annotations

from pathlib import Path

import pytest

import methods.two_stream_mhsa
from harness.engine.config import load_config
from harness.engine.run import build_runner, run_experiment

DEMO = Path(methods.two_stream_mhsa.__file__).parent / 'configs' / 'tsmhsa_demo_sysu.py'


@pytest.mark.slow
def test_demo_config_trains_and_beats_the_untrained_model(sysu_root: Path, tmp_path: Path) -> None:
    cfg = load_config(DEMO, {'data_root': str(sysu_root)})
    runner = build_runner(cfg, tmp_path / 'untrained', train=False, resume=False, log_level='WARNING')
    untrained = runner.test()['reid/all-single/mAP']

    record = run_experiment(str(DEMO), str(tmp_path / 'run'), data_root=str(sysu_root), log_level='WARNING')
    assert record['status'] == 'done' and record['comparable']
    assert record['method'] == 'two_stream_mhsa'
    trained = record['results']['all-single']['mean']['mAP']
    assert trained > untrained + 2.0, (untrained, trained)
