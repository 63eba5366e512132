"""Every method's LLCM configs: the full recipe (``<m>_llcm.py``, ``protocol_base = 'llcm'``) and
the CPU demo (``<m>_demo_llcm.py``) load over the LLCM protocol without changing it, keep their
method's SYSU-MM01 recipe where the authors give no LLCM setting, take the official LLCM
differences where they do (ZYK100/LLCM@886e27c ``AGW/train.py``, ``DEEN/train.py``), and build
with LLCM's 713 training classes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmengine.registry import DefaultScope

import methods
from harness import registry
from harness.engine.config import load_config, protocol_changes
from harness.plugins import discover
from protocols.datasets import INFO

ROOT = Path(methods.__file__).parent
STEMS = {
    'agw': 'agw',
    'caj': 'caj',
    'deen': 'deen',
    'mmn': 'mmn',
    'mpanet': 'mpanet',
    'two_stream_mhsa': 'tsmhsa',
}
# Parameters with LLCM's 713 classes: each model's SYSU-MM01 count (395 classes, asserted against
# the official model in the method's own tests) + 318 classes x its classifier weights per class.
PARAMETERS = {
    'agw': (24_359_311, 2048, 25_010_575),  # Linear(2048, C), no bias
    'caj': (24_359_311, 2048, 25_010_575),  # AGW's network
    'deen': (42_037_792, 2048, 42_689_056),  # Linear(2048, C), no bias
    'mmn': (26_769_814, 4 * 2048, 29_374_870),  # 4 stripe classifiers
    # shared, visible and infrared classifiers + the EMA copies of the last two, 7 x 2048-d input
    'mpanet': (52_517_958, 5 * 7 * 2048, 75_312_198),
    'two_stream_mhsa': (45_135_298, 6 * (512 + 1), 46_114_102),  # 6 parts, Linear(512, C)
}


def _config(method: str, demo: bool = False) -> Path:
    stem = STEMS[method]
    return ROOT / method / 'configs' / f'{stem}_{"demo_" if demo else ""}llcm.py'


def _parameters(cfg, num_classes: int) -> int:
    model = dict(cfg.model, backbone=dict(cfg.model['backbone'], pretrained=False))
    discover()
    with DefaultScope.overwrite_default_scope(registry.SCOPE), torch.device('meta'):
        built = registry.MODELS.build(dict(model, num_classes=num_classes))
    return sum(p.numel() for p in built.parameters())


def test_every_method_ships_both_llcm_configs():
    for method in STEMS:
        for demo in (False, True):
            assert _config(method, demo).is_file(), _config(method, demo)


@pytest.mark.parametrize('demo', [False, True], ids=['full', 'demo'])
@pytest.mark.parametrize('method', sorted(STEMS))
def test_llcm_config_keeps_the_protocol(method, demo):
    cfg = load_config(_config(method, demo))
    assert cfg.protocol['dataset'] == 'llcm' and protocol_changes(cfg) == {}
    assert cfg.protocol['directions'] == ('ir2vis', 'vis2ir')
    assert cfg.entry == dict(cfg.entry, method=method, kind='demo' if demo else 'full')
    assert cfg.selection['rule'] == 'final'


@pytest.mark.parametrize('method', sorted(STEMS))
def test_llcm_model_has_713_classes(method):
    cfg = load_config(_config(method))
    sysu, per_class, llcm = PARAMETERS[method]
    classes = INFO['llcm'].train_classes
    assert classes == 713
    assert _parameters(cfg, classes) == llcm == sysu + (713 - 395) * per_class
    assert _parameters(load_config(_config(method, demo=True)), classes) > 0


def _without(cfg, *keys) -> dict:
    """The config's keys but the file, the protocol and ``keys``: the method's recipe."""
    drop = {'config_file', 'protocol_base', 'protocol', 'data_root', *keys}
    return {k: v for k, v in cfg.to_dict().items() if k not in drop}


@pytest.mark.parametrize('method', ['caj', 'mmn', 'mpanet', 'two_stream_mhsa'])
def test_no_llcm_setting_from_the_authors_means_the_sysu_recipe(method):
    stem = STEMS[method]
    llcm = load_config(_config(method))
    sysu = load_config(ROOT / method / 'configs' / f'{stem}_sysu.py')
    assert _without(llcm) == _without(sysu)


def test_agw_llcm_adds_the_random_erasing_of_the_llcm_copy():
    # AGW/train.py:103-111: ... Normalize -> RandomErasing(probability=0.5, mean=[0, 0, 0]) with
    # random_erasing.py's defaults (area 0.02-0.4, aspect 0.3-1/0.3, 100 attempts)
    llcm = load_config(_config('agw'))
    sysu = load_config(ROOT / 'agw' / 'configs' / 'agw_sysu.py')
    assert llcm.train_pipeline[:-1] == sysu.train_pipeline
    erasing = llcm.train_pipeline[-1]
    assert erasing['type'] == 'RandomErasing' and 'value' not in erasing  # ImageNet mean = 0
    assert (erasing['p'], tuple(erasing['scale']), erasing['attempts']) == (0.5, (0.02, 0.4), 100)
    assert tuple(erasing['ratio']) == pytest.approx((0.3, 1 / 0.3))
    assert _without(llcm, 'train_pipeline') == _without(sysu, 'train_pipeline')


def test_deen_llcm_is_the_sysu_network_with_the_weaker_erasing():
    # DEEN/train.py:124-133 transform_llcm: erasing area 0.02-0.4 (SYSU-MM01: 0.2-0.8); the
    # 2048-d network of every dataset but RegDB (model.py:205-257), 384 x 144, 151 epochs.
    llcm = load_config(_config('deen'))
    sysu = load_config(ROOT / 'deen' / 'configs' / 'deen_sysu.py')
    assert llcm.model['last_stage'] == 4 and tuple(llcm.input_size) == (384, 144)
    assert tuple(llcm.train_pipeline[-1]['scale']) == (0.02, 0.4)
    assert tuple(sysu.train_pipeline[-1]['scale']) == (0.2, 0.8)
    assert llcm.train_pipeline[:-1] == sysu.train_pipeline[:-1]
    assert _without(llcm, 'train_pipeline') == _without(sysu, 'train_pipeline')
