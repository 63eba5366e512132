"""The official-checkpoint converter: round trip on official key names, strictness, safe loading."""

from __future__ import annotations

import argparse

import pytest
import torch

from methods.mpanet.convert import CheckpointMismatch, convert

from .conftest import tiny_model

# The official names, written out independently of the converter (official models/baseline.py and
# models/resnet.py: Baseline.backbone = ResNet with MAM3/MAM4.channel_attention, spatial_attention,
# bn_neck, classifier, visible_/infrared_classifier and their EMA copies with a trailing
# underscore).
HARNESS_TO_OFFICIAL = [
    ('mam3.gate.', 'backbone.MAM3.channel_attention.'),
    ('mam4.gate.', 'backbone.MAM4.channel_attention.'),
    ('backbone.', 'backbone.'),
    ('pattern_conv.', 'spatial_attention.'),
    ('neck.', 'bn_neck.'),
    ('classifier.', 'classifier.'),
    ('classifier_visible.', 'visible_classifier.'),
    ('classifier_infrared.', 'infrared_classifier.'),
    ('mean_classifier_visible.', 'visible_classifier_.'),
    ('mean_classifier_infrared.', 'infrared_classifier_.'),
]


def official_state(model) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in model.state_dict().items():
        src, dst = next((s, d) for s, d in HARNESS_TO_OFFICIAL if key.startswith(s))
        out[dst + key[len(src) :]] = value.clone()
    return out


@pytest.fixture
def trained_like():
    """A demo-size model with non-trivial BN statistics and distinct EMA copies."""
    model = tiny_model(num_classes=7, seed=3)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith('running_mean'):
                buf.normal_(0, 0.1)
            elif name.endswith('running_var'):
                buf.uniform_(0.5, 1.5)
        model.neck.bias.normal_(0, 0.1)
        model.mean_classifier_visible.weight.normal_()
        model.mean_classifier_infrared.weight.normal_()
    return model.eval()


def test_official_key_set_is_the_documented_one(trained_like):
    keys = set(official_state(trained_like))
    for key in (
        'backbone.conv1.weight',
        'backbone.layer4.0.downsample.0.weight',
        'backbone.MAM3.channel_attention.0.weight',
        'backbone.MAM4.channel_attention.2.weight',
        'spatial_attention.bias',
        'bn_neck.running_var',
        'classifier.weight',
        'visible_classifier_.weight',
        'infrared_classifier.weight',
    ):
        assert key in keys


@pytest.mark.parametrize('wrap', ['plain', 'state_dict', 'model', 'module'])
def test_round_trip(tmp_path, trained_like, wrap, batch):
    state = official_state(trained_like)
    if wrap == 'module':
        obj = {'module.' + k: v for k, v in state.items()}
    elif wrap == 'plain':
        obj = state
    else:
        obj = {wrap: state}
    torch.save(obj, tmp_path / 'official.pth')
    summary = convert(str(tmp_path / 'official.pth'), str(tmp_path / 'out.pth'))
    assert summary['num_classes'] == 7 and summary['backbone']['blocks'] == (1, 1, 1, 1)
    saved = torch.load(tmp_path / 'out.pth', map_location='cpu', weights_only=True)
    converted = saved['state_dict']
    assert saved['meta']['method'] == 'mpanet' and saved['meta']['num_classes'] == 7
    reference = trained_like.state_dict()
    assert set(converted) == set(reference) and summary['tensors'] == len(reference)
    assert all(torch.equal(converted[k], reference[k]) for k in reference)
    fresh = tiny_model(num_classes=7, seed=9).eval()
    fresh.load_state_dict(converted, strict=True)
    images, _ = batch()
    assert torch.equal(fresh.extract_feat(images, 1), trained_like.extract_feat(images, 1))


def test_mismatched_checkpoint_lists_every_problem(tmp_path, trained_like):
    state = official_state(trained_like)
    del state['backbone.layer2.0.conv1.weight']
    state['backbone.fc.weight'] = torch.zeros(10, 2048)
    state['spatial_attention.weight'] = torch.zeros(6, 1024, 1, 1)
    torch.save(state, tmp_path / 'bad.pth')
    with pytest.raises(CheckpointMismatch) as info:
        convert(str(tmp_path / 'bad.pth'), str(tmp_path / 'out.pth'))
    msg = str(info.value)
    assert 'unexpected keys (1): backbone.fc.weight' in msg
    assert (
        'missing keys (1): backbone.layer2.0.conv1.weight (official backbone.layer2.0.conv1.weight)'
    ) in msg
    assert (
        'spatial_attention.weight -> pattern_conv.weight: checkpoint (6, 1024, 1, 1), '
        'harness (6, 2048, 1, 1)'
    ) in msg
    assert not (tmp_path / 'out.pth').exists()


def test_key_without_a_rule_and_a_non_mpanet_checkpoint(tmp_path, trained_like):
    state = official_state(trained_like)
    state['triplet_head.weight'] = torch.zeros(3)
    torch.save(state, tmp_path / 'extra.pth')
    with pytest.raises(CheckpointMismatch, match=r'triplet_head.weight \(no mapping rule\)'):
        convert(str(tmp_path / 'extra.pth'), str(tmp_path / 'out.pth'))
    torch.save({'conv1.weight': torch.zeros(64, 3, 7, 7)}, tmp_path / 'resnet.pth')
    with pytest.raises(CheckpointMismatch, match='no classifier weight'):
        convert(str(tmp_path / 'resnet.pth'), str(tmp_path / 'out.pth'))
    with pytest.raises(FileNotFoundError):
        convert(str(tmp_path / 'absent.pth'), str(tmp_path / 'out.pth'))


def test_pickled_objects_need_an_explicit_trusted_flag(tmp_path, trained_like):
    torch.save(
        {'state_dict': official_state(trained_like), 'args': argparse.Namespace(lr=0.1)},
        tmp_path / 'pickled.pth',
    )
    with pytest.raises(ValueError, match='trusted=True'):
        convert(str(tmp_path / 'pickled.pth'), str(tmp_path / 'out.pth'))
    assert not (tmp_path / 'out.pth').exists()
    summary = convert(str(tmp_path / 'pickled.pth'), str(tmp_path / 'out.pth'), trusted=True)
    assert summary['tensors'] == len(trained_like.state_dict())
    torch.load(tmp_path / 'out.pth', weights_only=True)  # the output is always a pure tensor dict
