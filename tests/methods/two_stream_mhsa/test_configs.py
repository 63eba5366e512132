"""Every config loads over its protocol, every ablation trains one step at demo scale, and the
full-size parameter counts equal architecture arithmetic and the README table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from mmengine.registry import DefaultScope

import methods.two_stream_mhsa  # noqa: F401  (registers TwoStreamMHSA)
from harness.engine.config import load_config
from harness.registry import MODELS

PKG = Path(methods.two_stream_mhsa.__file__).parent
CONFIGS = PKG / 'configs'
ABLATIONS = sorted(p.name for p in CONFIGS.glob('tsmhsa_sysu_*.py'))
ALL = sorted(p.name for p in CONFIGS.glob('*.py'))
SYSU_CLASSES = 395


def _build(cfg_model: dict, num_classes: int):
    with DefaultScope.overwrite_default_scope('harness'):
        return MODELS.build(dict(cfg_model, num_classes=num_classes))


def test_the_required_configs_exist() -> None:
    expected = {f'tsmhsa_{k}{d}.py' for k in ('', 'demo_') for d in ('sysu', 'regdb', 'llcm')}
    expected |= {f'tsmhsa_sysu_{n}.py' for n in ('no_mhsa', 'no_parts', 'no_hc', 'no_aux')}
    expected |= {f'tsmhsa_sysu_b{i}.py' for i in range(7)}
    assert expected <= set(ALL)


@pytest.mark.parametrize('name', ALL)
def test_config_loads_over_its_protocol(name: str) -> None:
    cfg = load_config(CONFIGS / name)
    entry = cfg.entry
    assert entry['method'] == 'two_stream_mhsa' and entry['kind'] in ('full', 'demo', 'ablation')
    assert entry['label']
    assert cfg.protocol_base == next((d for d in ('regdb', 'llcm') if d in name), 'sysu')
    if entry['kind'] == 'ablation':
        assert entry.get('row'), name
    assert tuple(cfg.model['input_size']) == tuple(cfg.input_size), (
        'model.input_size must repeat input_size'
    )
    assert (
        cfg.train_dataloader['batch_size']
        == 2 * cfg.sampler['num_ids'] * cfg.sampler['num_instances']
    )
    assert all(
        s['begin'] == 0 for s in cfg.param_scheduler
    )  # milestones count from begin (docs/engine.md)


def test_ablation_rows_are_the_spec_grid() -> None:
    """Ablation rows B0-B6: (mhsa, parts, hc, aux) switched on cumulatively."""
    grid = {
        'B0': (False, 1, False, False),
        'B1': (True, 1, False, False),
        'B2': (False, 6, False, False),
        'B3': (False, 6, True, False),
        'B4': (True, 6, False, False),
        'B5': (True, 6, True, False),
        'B6': (True, 6, True, True),
    }
    for row, (mhsa, parts, hc, aux) in grid.items():
        cfg = load_config(CONFIGS / f'tsmhsa_sysu_{row.lower()}.py')
        m = cfg.model
        assert cfg.entry['row'] == row
        assert (list(m['mhsa_stages']) == [4]) == mhsa and m['num_parts'] == parts
        assert (m['losses'].get('hc') is not None) == hc and (m['aux'] == 'gray') == aux
        assert m['share_from'] == 5 and m['pos_enc'] == 'rel'


@pytest.mark.parametrize('name', ABLATIONS + ['tsmhsa_demo_sysu.py', 'tsmhsa_demo_regdb.py'])
def test_config_trains_one_step_at_demo_scale(name: str) -> None:
    cfg = load_config(CONFIGS / name)
    size = (96, 48)  # layer4 map 6 x 3: one row per part
    model_cfg = dict(
        cfg.model,
        input_size=size,
        backbone=dict(cfg.model['backbone'], pretrained=False, blocks=(1, 1, 1, 1)),
    )
    torch.manual_seed(0)
    model = _build(model_cfg, num_classes=5).train()
    ids = torch.tensor([1, 1, 3, 3])
    data = dict(
        inputs=torch.randint(0, 256, (8, 3, *size), dtype=torch.uint8),
        data_samples=dict(label=torch.cat([ids, ids]), modality=torch.tensor([0] * 4 + [1] * 4)),
    )
    data = model.data_preprocessor(data, training=True)
    losses = model(**data, mode='loss')
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    assert torch.isfinite(total)
    total.backward()
    assert all(
        p.grad is not None for n, p in model.named_parameters() if n.startswith('part_heads')
    )
    expect_hc = cfg.model['losses'].get('hc') is not None
    assert ('loss_hc' in losses) == expect_hc


# ---------------------------------------------------------------- parameter counts (C = 395)
def _bottleneck(cin: int, width: int, downsample: bool, conv2: int | None = None) -> int:
    """conv1 + bn1 + (3x3 conv2 | MHSA) + bn2 + conv3 + bn3 (+ 1x1 shortcut conv + bn)."""
    n = cin * width + 2 * width + (9 * width * width if conv2 is None else conv2) + 2 * width
    n += width * 4 * width + 2 * 4 * width
    return n + (cin * 4 * width + 2 * 4 * width if downsample else 0)


def _resnet50(layer4_conv2: int | None) -> int:
    total, cin = 3 * 64 * 7 * 7 + 2 * 64, 64
    for width, blocks in ((64, 3), (128, 4), (256, 6), (512, 3)):
        for b in range(blocks):
            total += _bottleneck(cin, width, b == 0, layer4_conv2 if width == 512 else None)
            cin = 4 * width
    return total


def expected_params(mhsa: bool, parts: int, classes: int) -> int:
    heads, d, fh, fw = 4, 128, 18, 9  # 288 x 144 input -> 18 x 9 layer4 map
    mhsa_params = 512 * 3 * heads * d + (2 * fh - 1) * d + (2 * fw - 1) * d
    trunk = 2 * _resnet50(mhsa_params if mhsa else None)  # share_from=5: two trunks
    head = parts * (2048 * 512 + 512 + 2 * 512) + parts * (512 * classes + classes)
    return trunk + head


def _readme_counts() -> dict[str, int]:
    rows = {}
    for line in (PKG / 'README.md').read_text().splitlines():
        m = re.match(r'\|\s*`(tsmhsa_\w+)\.py`\s*\|.*\|\s*([\d ,]+)\s*\|\s*$', line)
        if m:
            rows[m.group(1)] = int(re.sub(r'[ ,]', '', m.group(2)))
    return rows


def test_architecture_arithmetic_reproduces_the_spec() -> None:
    assert _resnet50(None) == 23_508_032  # ResNet-50 without fc
    assert expected_params(True, 6, 395) == 45_135_298
    assert expected_params(False, 6, 395) == 54_532_546
    assert expected_params(True, 6, 206) == 44_553_556


@pytest.mark.parametrize('name', ['tsmhsa_sysu.py'] + ABLATIONS)
def test_full_size_parameter_counts(name: str) -> None:
    cfg = load_config(CONFIGS / name)
    model_cfg = dict(cfg.model, backbone=dict(cfg.model['backbone'], pretrained=False))
    with torch.device('meta'):  # counts only: no memory, no init cost
        model = _build(model_cfg, SYSU_CLASSES)
    count = sum(p.numel() for p in model.parameters())
    expected = expected_params(bool(cfg.model['mhsa_stages']), cfg.model['num_parts'], SYSU_CLASSES)
    assert count == expected
    assert _readme_counts()[Path(name).stem] == count, 'README parameter table is out of date'
