"""ImageNet weights through torch's cache (faked locally: nothing here can download) and
load_model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.models import resnet as tv_resnet

from harness.models.backbones.resnet import PretrainedWeightsMissing, build_resnet

TOY_CONFIGS = (
    Path(__file__).resolve().parents[1] / 'fixtures' / 'toy_plugin' / 'vireid_toy' / 'configs'
)


def _offline(monkeypatch):
    def refuse(url, dst, **kw):
        raise OSError('network unreachable (test)')

    monkeypatch.setattr(torch.hub, 'download_url_to_file', refuse)


def test_missing_weights_fail_early_saying_where_to_put_them(monkeypatch, tmp_path):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    _offline(monkeypatch)
    with pytest.raises(PretrainedWeightsMissing) as err:
        build_resnet(18, pretrained=True)
    msg = str(err.value)
    expected = (
        tmp_path / 'hub' / 'checkpoints' / Path(tv_resnet.ResNet18_Weights.IMAGENET1K_V1.url).name
    )
    assert str(expected) in msg and 'pretrained=False' in msg


def test_weights_in_the_torch_cache_are_loaded(monkeypatch, tmp_path):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    _offline(monkeypatch)
    fake = tv_resnet.resnet18()  # stands in for the ImageNet file
    file = (
        tmp_path / 'hub' / 'checkpoints' / Path(tv_resnet.ResNet18_Weights.IMAGENET1K_V1.url).name
    )
    file.parent.mkdir(parents=True)
    torch.save(fake.state_dict(), file)
    net = build_resnet(18, last_stride=1, pretrained=True)
    assert torch.equal(net.layer3[1].conv2.weight, fake.layer3[1].conv2.weight)
    assert net.layer4[0].conv1.stride == (1, 1) and net.layer4[0].downsample[0].stride == (1, 1)
    # A local file given explicitly, and a demo-depth trunk loading the blocks it has.
    small = build_resnet(18, pretrained=str(file), blocks=(1, 1, 1, 1))
    assert torch.equal(small.layer1[0].conv1.weight, fake.layer1[0].conv1.weight)
    with pytest.raises(PretrainedWeightsMissing, match='does not exist'):
        build_resnet(18, pretrained=str(tmp_path / 'nope.pth'))


def test_load_model_restores_a_checkpoint_in_eval_mode(toy_plugin, tmp_path):
    from harness.api import load_model

    config = TOY_CONFIGS / 'toy_sysu.py'
    model = load_model(config, num_classes=7)
    state = {
        k: torch.randn_like(v) if v.is_floating_point() else v
        for k, v in model.state_dict().items()
    }
    torch.save({'state_dict': state, 'meta': {'num_classes': 7}}, tmp_path / 'ckpt.pth')
    loaded = load_model(config, tmp_path / 'ckpt.pth')
    assert not loaded.training
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in state.items())
    x = torch.randn(3, 3, 32, 16)
    assert loaded.extract_feat(x, 0).shape == (3, 64)  # 8 * width (4 rows x 2*width)
    torch.save({'x': [1, 2]}, tmp_path / 'bad.pth')
    with pytest.raises(ValueError, match='neither a harness checkpoint nor a state dict'):
        load_model(config, tmp_path / 'bad.pth')
