"""The CAJ model: AGW's CrossModalityReID with the ADP triplet and the flip-averaged feature."""

import pytest
import torch
import torch.nn.functional as F
from torchvision.models import resnet50

from harness.models import CrossModalityReID
from methods.caj.losses import TripletLossADP
from methods.caj.model import CAJ

DEMO = dict(pretrained=False, blocks=(1, 1, 1, 1), base_channels=8)


def test_parameter_count():
    """24,359,311 for SYSU-MM01 (395 classes): the parts the official forward uses. The official
    embed_net registers 71,365,839 with 395 classes (three full ResNet-50s without fc, of which two
    stems and one layer1-4 are used; measured on ICCV21_CAJ/model.py)."""
    trunk = sum(p.numel() for n, p in resnet50().named_parameters() if not n.startswith('fc.'))
    stem = 64 * 3 * 7 * 7 + 2 * 64
    non_local = {c: 3 * (c + 1) + 2 * c + 2 * c for c in (512, 1024)}  # g, theta, phi; W conv, BN
    expected = trunk + stem + 2 * non_local[512] + 3 * non_local[1024] + 2 * 2048 + 2048 * 395
    with torch.device('meta'):
        model = CAJ(num_classes=395, backbone=dict(pretrained=False))
    assert sum(p.numel() for p in model.parameters()) == expected == 24_359_311
    official = 3 * trunk + 2 * non_local[512] + 3 * non_local[1024] + 2 * 2048 + 2048 * 395
    assert official == 71_365_839


def test_caj_is_the_generic_model_with_its_own_loss_and_flip():
    model = CAJ(num_classes=4, backbone=DEMO)
    assert type(model) is CrossModalityReID and model.test_flip == 'renormalised-mean'
    assert isinstance(model.losses['tri'], TripletLossADP)
    assert (model.losses['tri'].alpha, model.losses['tri'].gamma) == (1.0, 1.0)
    assert model.losses['tri'].square == 1
    assert model.loss_inputs == {'id': 'logits', 'tri': 'pool'}


def test_flip_feature_is_the_renormalised_mean_of_the_two_normalised_features():
    torch.manual_seed(0)
    model = CAJ(num_classes=4, backbone=DEMO).eval()
    x = torch.randn(3, 3, 32, 16)
    with torch.no_grad():
        for modality in (0, 1):
            feat = F.normalize(model.forward_features(x, modality)['bn'], dim=1)
            mirrored = F.normalize(model.forward_features(x.flip(-1), modality)['bn'], dim=1)
            expected = F.normalize(feat + mirrored, dim=1)
            got = model.extract_feat(x, modality)
            assert torch.allclose(got, expected, atol=1e-6)
            assert torch.allclose(got.norm(dim=1), torch.ones(3), atol=1e-6)
            assert not torch.allclose(got, feat, atol=1e-4)  # the mirror does count
            # a mirrored query gets the same feature
            assert torch.allclose(model.extract_feat(x.flip(-1), modality), got, atol=1e-6)
            model.test_flip = None  # off: AGW's feature
            assert torch.allclose(model.extract_feat(x, modality), feat, atol=1e-6)
            model.test_flip = 'renormalised-mean'


def test_flip_option_is_checked():
    with pytest.raises(ValueError, match='test_flip'):
        CAJ(num_classes=4, backbone=DEMO, test_flip='sum')
    with pytest.raises(ValueError, match='normalize_test_feature'):
        CAJ(num_classes=4, backbone=DEMO, normalize_test_feature=False)
