"""The four MMN configs load over their protocol without changing it and read like the README's
table."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.engine.config import load_config, protocol_changes
from methods.mmn import METHOD
from methods.mmn.model import MMN

CONFIGS = Path(__file__).parents[3] / 'methods' / 'mmn' / 'configs'
NAMES = {
    'mmn_sysu.py': ('sysu', 'full'),
    'mmn_regdb.py': ('regdb', 'full'),
    'mmn_demo_sysu.py': ('sysu', 'demo'),
    'mmn_demo_regdb.py': ('regdb', 'demo'),
    'mmn_llcm.py': ('llcm', 'full'),
    'mmn_demo_llcm.py': ('llcm', 'demo'),
}


def test_method_spec_lists_the_configs():
    assert METHOD.name == 'mmn' and METHOD.converter == 'methods.mmn.convert:convert'
    assert sorted(p.name for p in METHOD.config_files()) == sorted(NAMES)
    assert callable(METHOD.load_converter())


@pytest.mark.parametrize('name', sorted(NAMES))
def test_config_keeps_the_protocol_and_its_shape(name):
    dataset, kind = NAMES[name]
    cfg = load_config(CONFIGS / name)
    assert (
        cfg.protocol['dataset'] == dataset
        and cfg.entry['kind'] == kind
        and cfg.entry['method'] == 'mmn'
    )
    assert protocol_changes(cfg) == {}
    assert cfg.selection['rule'] == 'final'  # the reported number is the final epoch's
    sampler = cfg.sampler
    assert cfg.train_dataloader['batch_size'] == 2 * sampler['num_ids'] * sampler['num_instances']
    assert cfg.input_size[0] % (16 * cfg.model['num_stripes']) == 0  # whole layer4 rows per stripe
    assert cfg.test['distance'] == 'cosine'


def test_full_config_is_the_released_recipe():
    cfg = load_config(CONFIGS / 'mmn_sysu.py')
    assert tuple(cfg.input_size) == (384, 192)
    assert (cfg.sampler['num_ids'], cfg.sampler['num_instances']) == (4, 4)
    losses = cfg.model['losses']
    assert (
        losses['dcl']['weight'] == 0.2
        and losses['tri']['margin'] == 0.3
        and cfg.model['num_stripes'] == 4
    )
    assert losses['dcl']['trainable'] is False and cfg.model['backbone']['pretrained'] is True
    assert cfg.train_cfg['max_epochs'] == 81 and cfg.amp['enabled'] is False
    assert [t['type'] for t in cfg.train_pipeline] == [
        'Pad',
        'RandomCrop',
        'RandomHorizontalFlip',
        'RandomErasing',
    ]
    erasing = cfg.train_pipeline[-1]
    assert (
        erasing['p'] == 0.5
        and tuple(erasing['scale']) == (0.02, 0.4)
        and erasing['attempts'] == 100
    )
    assert erasing['ratio'][1] == pytest.approx(1 / 0.3) and cfg.train_pipeline[0]['fill'] == 0
    # The official best-epoch rule, commented out (optimistic): train.py tests after epochs
    # 2, 4, ..., 80 of range(0, 81), i.e. after 3, 5, ..., 81 finished epochs, with its own score.
    line = next(
        t
        for t in (CONFIGS / 'mmn_sysu.py').read_text().splitlines()
        if t.startswith('# selection = ')
    )
    selection = eval(line[2:].split('=', 1)[1])
    assert selection == dict(rule='best-test-rank1', epochs=list(range(3, 82, 2)), criterion='mmn')
    from harness.engine.run import runner_config

    optimistic = load_config(CONFIGS / 'mmn_sysu.py', {'selection': selection})
    loop = runner_config(optimistic, '/tmp/unused', num_classes=4)['train_cfg']
    assert loop['type'] == 'ListedEpochsTrainLoop' and loop['val_epochs'][:2] == [3, 5]
    assert loop['val_epochs'][-1] == 81 and len(loop['val_epochs']) == 40


def test_demo_model_builds_and_runs_at_demo_size():
    cfg = load_config(CONFIGS / 'mmn_demo_sysu.py')
    torch.manual_seed(0)
    model = MMN(num_classes=10, **{k: v for k, v in cfg.model.items() if k != 'type'}).eval()
    with torch.no_grad():
        # layer4 of a bottleneck trunk is 32 x base_channels wide: 4 stripes of 512 at the demo's
        # width 16
        width = 32 * cfg.model['backbone']['base_channels']
        assert model.feat_dim == width == 512
        assert model.extract_feat(torch.randn(2, 3, *cfg.input_size), 1).shape == (2, 4 * width)
