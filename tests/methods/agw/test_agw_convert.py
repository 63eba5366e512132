"""The official embed_net key layout (rebuilt here at demo depth) converts into AGW losslessly."""

import pytest
import torch

from methods.agw.convert import convert, convert_state_dict, load_official
from methods.agw.model import AGW

from .official_layout import OfficialLayout, distinctive, save_train_py_checkpoint


@pytest.fixture(scope='module')
def official():
    return distinctive(OfficialLayout(7))


def test_converted_weights_give_the_official_features(official):
    target = AGW(num_classes=7, backbone=dict(pretrained=False, blocks=(1, 1, 1, 1)))
    out, dropped = convert_state_dict(official.state_dict(), target.state_dict())
    target.load_state_dict(out, strict=True)
    target.eval()
    assert all(
        k.startswith(
            (
                'visible_module.visible.layer',
                'thermal_module.thermal.layer',
                'base_resnet.base.conv1',
                'base_resnet.base.bn1',
            )
        )
        for k in dropped
    )
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        for modal, code in ((1, 0), (2, 1)):  # official modal flags: 1 visible, 2 thermal
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
    path = save_train_py_checkpoint(official, tmp_path / 'sysu_agw_best.t')
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
