"""Converter (methods/deen/convert.py) on the official ``embed_net`` key layout (built from its
names and shapes in official_layout.py, never by importing the official code): every used tensor
mapped bit for bit, only the unused trunk copies dropped, features equal after conversion, strict
refusals, safe loading."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from methods.deen.convert import convert, convert_state_dict, harness_key

from .conftest import DEMO_SIZE, randomise_bn
from .official_layout import (
    OfficialLayout,
    official_shapes,
    official_state,
    parameter_count,
)


def test_the_official_layout_registers_the_documented_counts():
    # embed_net(n, 'sysu') registers 88,235,360 + 2048 n parameters: 89,044,320 for SYSU-MM01's
    # 395 classes (measured on the official module), 88,276,320 for n = 20 (the figure).
    sysu, regdb = official_shapes(395, 'sysu'), official_shapes(206, 'regdb')
    assert (len(sysu), len(regdb)) == (1048, 1022)
    assert parameter_count(sysu) == 89_044_320 and parameter_count(regdb) == 75_065_440
    assert parameter_count(official_shapes(20, 'sysu')) == 88_276_320


EXPECTED_PAIRS = [
    ('visible_module.visible.conv1.weight', 'backbone.visible.stem.0.weight'),
    ('visible_module.visible.bn1.running_var', 'backbone.visible.stem.1.running_var'),
    ('thermal_module.thermal.bn1.bias', 'backbone.infrared.stem.1.bias'),
    (
        'base_resnet.base.layer1.0.downsample.0.weight',
        'backbone.shared.layer1.0.downsample.0.weight',
    ),
    ('base_resnet.base.layer3.5.bn3.weight', 'backbone.shared.layer3.5.bn3.weight'),
    ('MFA1.CNL.g.weight', 'mfa.layer1.cnl.g.weight'),
    ('MFA2.PNL.theta.bias', 'mfa.layer2.pnl.theta.bias'),
    ('MFA1.PNL.W.1.running_mean', 'mfa.layer1.pnl.W.1.running_mean'),
    ('MFA2.CNL.W.0.weight', 'mfa.layer2.cnl.W.0.weight'),
    ('DEE.FC11.weight', 'dee.branches.0.convs.0.weight'),
    ('DEE.FC23.weight', 'dee.branches.1.convs.2.weight'),
    ('DEE.FC2.bias', 'dee.branches.1.proj.bias'),
    ('DEE.FC1.weight', 'dee.branches.0.proj.weight'),
    ('bottleneck.running_var', 'head.bottleneck.running_var'),
    ('classifier.weight', 'head.classifier.weight'),
]


@pytest.mark.parametrize(
    ('dataset', 'classes', 'converted', 'dropped'),
    [('sysu', 395, 418, 630), ('regdb', 206, 332, 690)],
)
def test_round_trip_maps_every_used_tensor(full_deen, dataset, classes, converted, dropped):
    official = official_state(classes, dataset)
    target = full_deen[dataset].state_dict()
    out, gone = convert_state_dict(official, target)
    assert set(out) == set(target) and len(out) == converted and len(gone) == dropped
    for old, new in EXPECTED_PAIRS:
        assert torch.equal(out[new], official[old]), (old, new)
    for old, value in official.items():  # every used tensor lands where harness_key says
        if old not in gone:
            assert torch.equal(out[harness_key(old)], value), old
    # Dropped: layer1-4 of both modality copies (2 x 312 tensors), the shared copy's stem (6),
    # and for RegDB also the never-called shared layer4 (60).
    prefixes = (
        'visible_module.visible.layer',
        'thermal_module.thermal.layer',
        'base_resnet.base.conv1.',
        'base_resnet.base.bn1.',
    )
    extra = [k for k in gone if not k.startswith(prefixes)]
    assert all(k.startswith('base_resnet.base.layer4.') for k in extra)
    assert len(extra) == (60 if dataset == 'regdb' else 0)


def test_features_equal_the_official_forward_after_conversion(tiny_deen):
    torch.manual_seed(0)
    official = randomise_bn(OfficialLayout(num_classes=7), seed=1).eval()
    with torch.no_grad():  # distinctive non-BN weights too, small enough for the relations
        for name, p in official.named_parameters():
            if name.startswith('MFA') and p.dim() > 1:
                p.mul_(0.3)
    model = tiny_deen(num_classes=7).eval()
    out, dropped = convert_state_dict(official.state_dict(), model.state_dict())
    model.load_state_dict(out, strict=True)
    unused = (
        'visible_module.visible.layer',
        'thermal_module.thermal.layer',
        'base_resnet.base.conv1',
        'base_resnet.base.bn1',
    )
    assert sorted(dropped) == sorted(k for k in official.state_dict() if k.startswith(unused))
    x = torch.randn(3, 3, *DEMO_SIZE, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        for modal, modality in ((1, 'visible'), (2, 'infrared')):
            pool, bn = official(x, modal)
            ours_pool, ours_bn = model.embeddings(x, 0 if modal == 1 else 1)
            assert torch.allclose(ours_pool, pool, atol=1e-6) and torch.allclose(
                ours_bn, bn, atol=1e-6
            )
            flipped = official(torch.flip(x, dims=[3]), modal)
            six = [(a + b) for a, b in zip((pool, bn), flipped)]
            ref = torch.cat([six[i % 2][(i // 2) * 3 : (i // 2 + 1) * 3] for i in range(6)], 1)
            assert torch.allclose(model.extract_feat(x, modality), ref, atol=1e-6)


def test_converted_file_loads_strictly_and_names_its_config(full_deen, tmp_path):
    official = official_state(395, 'sysu', seed=3)
    src = tmp_path / 'sysu_deen_p4_n6_lr_0.1_seed_0_best.t'
    # train.py's layout: DataParallel names under 'net', numpy scores beside it (a pickle)
    torch.save(
        {
            'net': {f'module.{k}': v for k, v in official.items()},
            'cmc': np.zeros(20),
            'mAP': np.float64(0.5),
            'epoch': 80,
        },
        src,
    )
    with pytest.raises(ValueError, match='trusted=True'):
        convert(str(src), str(tmp_path / 'refused.pth'))
    assert not (tmp_path / 'refused.pth').exists()
    summary = convert(str(src), str(tmp_path / 'deen.pth'), trusted=True)
    assert summary['config'] == 'deen_sysu' and summary['num_classes'] == 395
    assert (summary['converted'], summary['dropped_unused'], summary['official_keys']) == (
        418,
        630,
        1048,
    )
    saved = torch.load(tmp_path / 'deen.pth', map_location='cpu', weights_only=True)
    meta = saved['meta']
    assert meta['method'] == 'deen' and meta['num_classes'] == 395
    assert meta['config_name'] == 'deen_sysu.py' and meta['dataset'] == 'sysu'
    model = copy.deepcopy(full_deen['sysu'])
    model.load_state_dict(saved['state_dict'], strict=True)
    assert torch.equal(model.mfa['layer3'].pnl.phi.weight, official['MFA3.PNL.phi.weight'])


def test_a_regdb_checkpoint_is_recognised(tmp_path):
    torch.save(official_state(206, 'regdb'), tmp_path / 'regdb.t')  # tensors only: safe to load
    summary = convert(str(tmp_path / 'regdb.t'), str(tmp_path / 'out.pth'))
    assert summary['config'] == 'deen_regdb' and summary['num_classes'] == 206
    meta = torch.load(tmp_path / 'out.pth', weights_only=True)['meta']
    assert meta['config_name'] == 'deen_regdb.py' and meta['dataset'] == 'regdb'


def test_mismatches_are_refused(full_deen):
    official = official_state(395, 'sysu')
    target = full_deen['sysu'].state_dict()
    with pytest.raises(ValueError, match=r'1 unexpected key.*MFA4\.CNL\.g\.weight'):
        convert_state_dict(dict(official, **{'MFA4.CNL.g.weight': torch.zeros(3)}), target)
    # a tensor named like an unused trunk tensor but not one is refused, not silently dropped
    with pytest.raises(ValueError, match='unexpected.*visible_module.visible.layer2.0.conv1'):
        convert_state_dict(
            dict(official, **{'visible_module.visible.layer2.0.conv1.weight': torch.zeros(3)}),
            target,
        )
    missing = {k: v for k, v in official.items() if k != 'DEE.FC12.weight'}
    with pytest.raises(ValueError, match=r'missing.*dee\.branches\.0\.convs\.1\.weight'):
        convert_state_dict(missing, target)
    with pytest.raises(ValueError, match=r'shape mismatch.*classifier\.weight \(206, 2048\)'):
        convert_state_dict(dict(official, **{'classifier.weight': torch.zeros(206, 2048)}), target)


def test_a_file_that_is_not_deen(tmp_path):
    torch.save({'conv1.weight': torch.zeros(64, 3, 7, 7)}, tmp_path / 'resnet.pth')
    with pytest.raises(ValueError, match="lacks 'classifier.weight'"):
        convert(str(tmp_path / 'resnet.pth'), str(tmp_path / 'out.pth'))
    with pytest.raises(FileNotFoundError):
        convert(str(tmp_path / 'absent.pth'), str(tmp_path / 'out.pth'))
