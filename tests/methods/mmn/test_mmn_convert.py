"""Converter round trip on a state dict with the official ``embed_net`` key names
(methods/mmn/README.md, converter).

The official key set is built here from the documented structure (three torchvision-named
ResNet-50 trunks without fc, 4 bottleneck/classifier pairs, the MMG convs and BNs), never by
importing the official code.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torchvision

from methods.mmn.convert import convert, convert_state_dict

C = 395


@pytest.fixture(scope='module')
def official_state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    resnet = {
        k: v
        for k, v in torchvision.models.resnet50(weights=None).state_dict().items()
        if not k.startswith('fc.')
    }

    def fill(shape, dtype=torch.float32):
        # Distinct random values everywhere, so a swapped mapping cannot go unnoticed.
        return (
            torch.randint(0, 1000, shape, generator=g)
            if dtype == torch.long
            else torch.randn(shape, generator=g)
        )

    state = {}
    for prefix in ('thermal_module.thermal.', 'visible_module.visible.', 'base_resnet.base.'):
        state.update({prefix + k: fill(v.shape, v.dtype) for k, v in resnet.items()})
    bn = lambda n: {'weight': (n,), 'bias': (n,), 'running_mean': (n,), 'running_var': (n,)}  # noqa: E731
    for k in range(1, 5):
        state.update({f'bottleneck{k}.{n}': fill(s) for n, s in bn(2048).items()})
        state[f'bottleneck{k}.num_batches_tracked'] = torch.tensor(k)
        state[f'classifier{k}.weight'] = fill((C, 2048))
    for i in (1, 2):
        state[f'encode{i}.weight'], state[f'encode{i}.bias'] = fill((1, 3, 1, 1)), fill((1,))
        state[f'fc{i}.weight'], state[f'fc{i}.bias'] = fill((1, 1, 1, 1)), fill((1,))
        state.update({f'bn{i}.{n}': fill(s) for n, s in bn(1).items()})
        state[f'bn{i}.num_batches_tracked'] = torch.tensor(i)
    state['decode.weight'], state['decode.bias'] = fill((3, 1, 1, 1)), fill((3,))
    assert len(state) == 998  # the official embed_net state dict has 998 entries
    return state


@pytest.fixture(scope='module')
def target(full_mmn_395) -> dict[str, torch.Tensor]:
    return full_mmn_395.state_dict()


EXPECTED_PAIRS = [
    ('visible_module.visible.conv1.weight', 'backbone.visible.stem.0.weight'),
    ('visible_module.visible.bn1.running_var', 'backbone.visible.stem.1.running_var'),
    ('thermal_module.thermal.conv1.weight', 'backbone.infrared.stem.0.weight'),
    ('thermal_module.thermal.bn1.bias', 'backbone.infrared.stem.1.bias'),
    (
        'base_resnet.base.layer1.0.downsample.0.weight',
        'backbone.shared.layer1.0.downsample.0.weight',
    ),
    ('base_resnet.base.layer4.0.conv2.weight', 'backbone.shared.layer4.0.conv2.weight'),
    ('base_resnet.base.layer4.2.bn3.bias', 'backbone.shared.layer4.2.bn3.bias'),
    ('bottleneck1.weight', 'bnnecks.0.weight'),
    ('bottleneck3.num_batches_tracked', 'bnnecks.2.num_batches_tracked'),
    ('classifier4.weight', 'classifiers.3.weight'),
    ('encode1.weight', 'mmg.visible.encode.weight'),
    ('fc1.bias', 'mmg.visible.fc.bias'),
    ('bn1.running_mean', 'mmg.visible.bn.running_mean'),
    ('encode2.bias', 'mmg.infrared.encode.bias'),
    ('fc2.weight', 'mmg.infrared.fc.weight'),
    ('bn2.weight', 'mmg.infrared.bn.weight'),
    ('decode.weight', 'mmg.decode.weight'),
    ('decode.bias', 'mmg.decode.bias'),
]


def test_round_trip_maps_every_used_tensor_and_drops_only_the_unused_trunks(official_state, target):
    out, dropped = convert_state_dict(official_state, target)
    assert set(out) == set(target) and len(out) == 368
    for old, new in EXPECTED_PAIRS:
        assert torch.equal(out[new], official_state[old]), (old, new)
    # Every official used tensor lands somewhere, bit for bit, and nothing is mapped twice.
    used = {k: v for k, v in official_state.items() if k not in dropped}
    assert len(used) == len(out)
    assert sorted(v.sum().item() for v in used.values()) == sorted(
        v.sum().item() for v in out.values()
    )
    # Dropped: ResNet layer1-4 of both modality trunks (312 tensors each) and the shared trunk's
    # stem (6).
    assert len(dropped) == 2 * 312 + 6
    assert all(
        k.startswith(
            (
                'visible_module.visible.layer',
                'thermal_module.thermal.layer',
                'base_resnet.base.conv1.',
                'base_resnet.base.bn1.',
            )
        )
        for k in dropped
    )


def test_converted_file_loads_strictly_into_mmn(official_state, full_mmn_395, tmp_path):
    src = tmp_path / 'official.t'
    # train.py's layout with tensors only, under 'net' and with DataParallel's 'module.' prefix.
    torch.save({'net': {'module.' + k: v for k, v in official_state.items()}, 'epoch': 80}, src)
    summary = convert(str(src), str(tmp_path / 'mmn.pth'))
    assert (
        summary['num_classes'] == C
        and summary['converted'] == 368
        and summary['dropped_unused'] == 630
    )
    saved = torch.load(tmp_path / 'mmn.pth', map_location='cpu', weights_only=True)
    state = saved['state_dict']  # a self-describing harness checkpoint
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert saved['meta']['method'] == 'mmn' and saved['meta']['num_classes'] == C
    model = type(full_mmn_395)(num_classes=C, backbone=dict(pretrained=False, blocks=(1, 1, 1, 1)))
    with pytest.raises(RuntimeError):  # wrong architecture: strict loading notices
        model.load_state_dict(state, strict=True)
    loaded = copy.deepcopy(full_mmn_395)  # the session fixture stays at its initialisation
    loaded.load_state_dict(state, strict=True)
    assert torch.equal(loaded.mmg.infrared.fc.weight, official_state['fc2.weight'])


def test_refuses_an_unexpected_key(official_state, target):
    bad = dict(official_state, **{'centre.weight': torch.zeros(3)})
    with pytest.raises(ValueError, match=r'1 unexpected key.*centre\.weight'):
        convert_state_dict(bad, target)
    # A tensor named like an unused trunk tensor but not one is refused too, not silently dropped.
    bad = dict(official_state, **{'visible_module.visible.layer9.weight': torch.zeros(3)})
    with pytest.raises(ValueError, match=r'layer9'):
        convert_state_dict(bad, target)


def test_refuses_a_missing_used_key(official_state, target):
    bad = {k: v for k, v in official_state.items() if k != 'encode2.weight'}
    with pytest.raises(
        ValueError, match=r'1 used tensor\(s\) missing.*mmg\.infrared\.encode\.weight'
    ):
        convert_state_dict(bad, target)


def test_refuses_a_shape_mismatch(official_state, target):
    bad = dict(official_state, **{'classifier2.weight': torch.zeros(206, 2048)})
    with pytest.raises(ValueError, match=r'shape mismatch.*classifier2\.weight'):
        convert_state_dict(bad, target)


def test_old_checkpoint_without_num_batches_tracked_gets_zeros(official_state, target):
    old = {k: v for k, v in official_state.items() if not k.endswith('num_batches_tracked')}
    out, _ = convert_state_dict(old, target)
    assert out['bnnecks.0.num_batches_tracked'].item() == 0


def test_pickled_non_tensors_need_trusted(official_state, tmp_path):
    # train.py also saves cmc/mAP as numpy objects: refused by weights_only loading unless trusted.
    src = tmp_path / 'official_numpy.t'
    torch.save(
        {'net': official_state, 'cmc': np.arange(3.0), 'mAP': np.float64(0.5), 'epoch': 2}, src
    )
    with pytest.raises(ValueError, match='trusted=True'):
        convert(str(src), str(tmp_path / 'x.pth'))
    assert not (tmp_path / 'x.pth').exists()
    assert convert(str(src), str(tmp_path / 'x.pth'), trusted=True)['converted'] == 368


def test_missing_file_and_non_state_dict(tmp_path):
    with pytest.raises(FileNotFoundError):
        convert(str(tmp_path / 'nope.t'), str(tmp_path / 'out.pth'))
    torch.save([torch.zeros(1)], tmp_path / 'list.t')
    with pytest.raises(ValueError, match='expected an embed_net state dict'):
        convert(str(tmp_path / 'list.t'), str(tmp_path / 'out.pth'))
