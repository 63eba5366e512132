"""CAJ's official checkpoints convert into the harness CAJ model losslessly: the converted model's
test feature (flip-averaged, as testa.py computes it) equals the official network's, at full
ResNet-50 depth with the SYSU-MM01 class count (so the converted file names caj_sysu.py)."""

import pytest
import torch

from harness.checkpoints import read_checkpoint
from methods.caj import METHOD
from methods.caj.convert import convert, convert_state_dict, load_official
from methods.caj.model import CAJ
from methods.caj.released import DRIVE_ID, RELEASED, onto_model

from .official_layout import (
    OfficialEmbedNet,
    distinctive,
    l2,
    official_flip_feature,
    save_train_ext_checkpoint,
)


@pytest.fixture(scope='module')
def official():
    """The full-size official network with SYSU-MM01's 395 classes (random, distinctive)."""
    return distinctive(OfficialEmbedNet(395))


@pytest.fixture(scope='module')
def converted(official, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('caj')
    src = save_train_ext_checkpoint(official, tmp / 'sysu_adp_joint_co_nog_ch_nog_sq1_best.t')
    summary = convert(str(src), str(tmp / 'caj.pth'), trusted=True)
    return summary, read_checkpoint(tmp / 'caj.pth', trusted=False)


def test_summary_and_self_description(converted, official):
    summary, ckpt = converted
    assert summary['num_classes'] == 395 and summary['method'] == 'caj'
    assert summary['official_keys'] == len(official.state_dict())
    unused = (
        'visible_module.visible.layer',
        'thermal_module.thermal.layer',
        'base_resnet.base.conv1.',
        'base_resnet.base.bn1.',
    )
    assert summary['dropped_unused'] == sum(k.startswith(unused) for k in official.state_dict())
    assert summary['converted'] == len(ckpt['state_dict'])
    assert ckpt['meta']['method'] == 'caj' and ckpt['meta']['config_name'] == 'caj_sysu.py'
    assert ckpt['meta']['dataset'] == 'sysu'


def test_converted_model_gives_the_official_test_features(converted, official):
    _, ckpt = converted
    model = CAJ(num_classes=395, backbone=dict(pretrained=False))
    model.load_state_dict(ckpt['state_dict'], strict=True)
    model.eval()
    assert model.test_flip == 'renormalised-mean'
    torch.manual_seed(1)
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        for modal, code in ((1, 0), (2, 1)):  # official modal flags: 1 visible, 2 thermal
            expected = official_flip_feature(official, x, modal)
            got = model.extract_feat(x, code)
            assert (got - expected).abs().max() < 1e-5
            # and without the flip, the plain "fc" feature of train_ext.py's periodic test
            model.test_flip = None
            assert torch.allclose(model.extract_feat(x, code), l2(official(x, modal)[1]), atol=1e-5)
            model.test_flip = 'renormalised-mean'


def test_unexpected_missing_and_misshaped_keys_are_refused():
    official = OfficialEmbedNet(7, blocks=(1, 1, 1, 1), base_channels=8).state_dict()
    target = CAJ(
        num_classes=7, backbone=dict(pretrained=False, blocks=(1, 1, 1, 1), base_channels=8)
    ).state_dict()
    out, dropped = convert_state_dict(official, target)
    assert set(out) == set(target) and dropped
    with pytest.raises(ValueError, match='unexpected'):
        convert_state_dict({**official, 'extra.weight': torch.zeros(1)}, target)
    with pytest.raises(ValueError, match='missing'):
        convert_state_dict({k: v for k, v in official.items() if not k.startswith('NL_3')}, target)
    with pytest.raises(ValueError, match='shape'):
        convert_state_dict({**official, 'classifier.weight': torch.zeros(3, 256)}, target)


def test_train_ext_checkpoint_needs_trust(tmp_path):
    net = OfficialEmbedNet(7, blocks=(1, 1, 1, 1), base_channels=8)
    path = save_train_ext_checkpoint(net, tmp_path / 'regdb_best.t')
    with pytest.raises(ValueError, match='trusted=True'):
        load_official(path)
    assert set(load_official(path, trusted=True)) == set(net.state_dict())
    bare = tmp_path / 'bare.pth'
    torch.save({'net': {'bottleneck.weight': torch.ones(4)}}, bare)
    with pytest.raises(ValueError, match='classifier.weight'):
        convert(str(bare), str(tmp_path / 'out.pth'))


def test_the_released_sysu_checkpoint_is_declared(tmp_path):
    assert METHOD.released == 'methods.caj.released:RELEASED' and METHOD.aliases == ('CAJ',)
    (rel,) = RELEASED  # ICCV21_CAJ/README.md links a SYSU-MM01 model only
    assert (rel.method, rel.config, rel.dataset, rel.gdrive_id) == (
        'caj',
        'caj_sysu',
        'sysu',
        '1vIKkB61frqA-zG0RiL282heqthvwkKdO',
    )
    assert DRIVE_ID in rel.url and rel.listed_in.endswith('ICCV21_CAJ/README.md#L11')
    assert rel.converter() is onto_model
    net = OfficialEmbedNet(5, blocks=(1, 1, 1, 1), base_channels=8)
    path = save_train_ext_checkpoint(net, tmp_path / 'caj_sysu_released.t')
    target = CAJ(
        num_classes=5, backbone=dict(pretrained=False, blocks=(1, 1, 1, 1), base_channels=8)
    ).state_dict()
    state = onto_model(path, target, trusted=True)
    assert torch.equal(state['head.classifier.weight'], net.classifier.weight)
