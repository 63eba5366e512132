"""One ``extract_feat`` modality convention for every method, checked once in the base class."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.api import load_model
from harness.engine.config import load_config

CONFIGS = Path(__file__).resolve().parents[2] / 'methods'
DEMOS = [
    'agw/configs/agw_demo_regdb.py',
    'mmn/configs/mmn_demo_regdb.py',
    'mpanet/configs/mpanet_demo_regdb.py',
    'two_stream_mhsa/configs/tsmhsa_demo_regdb.py',
]


@pytest.mark.parametrize('config', DEMOS, ids=[d.split('/')[0] for d in DEMOS])
def test_every_method_takes_modality_codes_names_and_tensors(config):
    torch.manual_seed(0)
    model = load_model(CONFIGS / config)  # no dataset: RegDB's 206 classes
    height, width = load_config(CONFIGS / config).input_size
    images = torch.randn(2, 3, height, width)
    with torch.no_grad():
        visible = model.extract_feat(images, 0)
        infrared = model.extract_feat(images, 1)
        assert torch.equal(model.extract_feat(images, 'Visible'), visible)
        for name in ('thermal', torch.tensor([1, 1])):
            assert torch.equal(model.extract_feat(images, name), infrared)
        for bad in ('nir', 2, True, torch.tensor([0, 1])):
            with pytest.raises(ValueError, match='modality'):
                model.extract_feat(images, bad)
