"""The official embed_net key layout (rebuilt here at demo depth) converts into AGW losslessly."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet

from harness.models.backbones.non_local import NonLocalBlock
from methods.agw.convert import convert, convert_state_dict, load_official
from methods.agw.model import AGW


def _resnet():
    net = ResNet(Bottleneck, [1, 1, 1, 1])
    net.layer4[0].conv2.stride = (1, 1)          # last_conv_stride=1
    net.layer4[0].downsample[0].stride = (1, 1)
    del net.fc                                    # the official resnet.py has no fc
    return net


class OfficialLayout(nn.Module):
    """embed_net's attribute names and forward (model.py), with one block per stage."""

    def __init__(self, num_classes):
        super().__init__()
        self.visible_module = nn.Module()
        self.visible_module.visible = _resnet()
        self.thermal_module = nn.Module()
        self.thermal_module.thermal = _resnet()
        self.base_resnet = nn.Module()
        self.base_resnet.base = _resnet()
        self.NL_1 = nn.ModuleList()
        self.NL_2 = nn.ModuleList([NonLocalBlock(512)])
        self.NL_3 = nn.ModuleList([NonLocalBlock(1024)])
        self.NL_4 = nn.ModuleList()
        self.bottleneck = nn.BatchNorm1d(2048)
        self.classifier = nn.Linear(2048, num_classes, bias=False)

    def forward(self, x, modal):
        net = self.visible_module.visible if modal == 1 else self.thermal_module.thermal
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        base = self.base_resnet.base
        x = base.layer1(x)
        x = self.NL_2[0](base.layer2(x))
        x = self.NL_3[0](base.layer3(x))
        x = base.layer4(x)
        b, c = x.shape[:2]
        pooled = (torch.mean(x.view(b, c, -1) ** 3.0, dim=-1) + 1e-12) ** (1 / 3.0)
        feat = self.bottleneck(pooled)
        return pooled / pooled.norm(dim=1, keepdim=True), feat / feat.norm(dim=1, keepdim=True)


@pytest.fixture(scope='module')
def official():
    torch.manual_seed(0)
    net = OfficialLayout(7)
    with torch.no_grad():  # make every tensor distinctive, including BN statistics and NL outputs
        for name, t in net.state_dict().items():
            if t.dtype.is_floating_point:
                t.copy_(torch.rand_like(t) * 0.2 + 0.9 if 'running_var' in name or name.endswith('bn3.weight')
                        else torch.randn_like(t) * 0.05 + (1.0 if name.endswith('.weight') and t.dim() == 1 else 0.0))
    return net.eval()


def test_converted_weights_give_the_official_features(official):
    target = AGW(num_classes=7, backbone=dict(pretrained=False, blocks=(1, 1, 1, 1)))
    out, dropped = convert_state_dict(official.state_dict(), target.state_dict())
    target.load_state_dict(out, strict=True)
    target.eval()
    assert all(k.startswith(('visible_module.visible.layer', 'thermal_module.thermal.layer',
                             'base_resnet.base.conv1', 'base_resnet.base.bn1')) for k in dropped)
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        for modal, code in ((1, 0), (2, 1)):    # official modal flags: 1 visible, 2 thermal
            pool, fc = official(x, modal)
            assert torch.allclose(target.extract_feat(x, code), fc, atol=1e-5)
    assert torch.equal(out['non_local.layer3.0.W.1.weight'], official.NL_3[0].W[1].weight)


def test_unexpected_missing_and_misshaped_keys_are_refused(official):
    target = AGW(num_classes=7, backbone=dict(pretrained=False, blocks=(1, 1, 1, 1))).state_dict()
    state = official.state_dict()
    with pytest.raises(ValueError, match='unexpected'):
        convert_state_dict({**state, 'extra.weight': torch.zeros(1)}, target)
    with pytest.raises(ValueError, match='missing'):
        convert_state_dict({k: v for k, v in state.items() if not k.startswith('NL_2')}, target)
    with pytest.raises(ValueError, match='shape'):
        convert_state_dict({**state, 'classifier.weight': torch.zeros(3, 2048)}, target)


def test_train_py_checkpoint_needs_trust(tmp_path, official):
    path = tmp_path / 'sysu_agw_best.t'
    state = {f'module.{k}': v for k, v in official.state_dict().items()}
    torch.save({'net': state, 'cmc': np.zeros(20), 'mAP': np.float64(0.5), 'epoch': 80}, path)
    with pytest.raises(ValueError, match='trusted=True'):
        load_official(path)
    loaded = load_official(path, trusted=True)
    assert set(loaded) == set(official.state_dict())
    bare = tmp_path / 'bare.pth'
    torch.save({'net': {'bottleneck.weight': torch.ones(4)}}, bare)
    with pytest.raises(ValueError, match='classifier.weight'):
        convert(str(bare), str(tmp_path / 'out.pth'))
    with pytest.raises(FileNotFoundError):
        load_official(tmp_path / 'absent.t')
