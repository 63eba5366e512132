"""The middle modality generator: shapes, official initialisation, per-modality BN, pointwise
decoder."""

from __future__ import annotations

import math

import pytest
import torch

from methods.mmn.mmg import MiddleModalityGenerator


def test_output_shapes_for_one_modality_and_for_a_training_pair():
    mmg = MiddleModalityGenerator()
    x = torch.randn(5, 3, 12, 6)
    for modality in (0, 1):
        assert mmg(x, modality).shape == (5, 3, 12, 6)
    m_vis, m_ir = mmg.forward_pair(torch.randn(4, 3, 8, 4), torch.randn(4, 3, 8, 4))
    assert m_vis.shape == m_ir.shape == (4, 3, 8, 4)
    with pytest.raises(ValueError, match='modality must be 0'):
        mmg(x, 2)


def test_initialisation_is_the_official_constant_and_22_parameters():
    mmg = MiddleModalityGenerator()
    convs = [mmg.visible.encode, mmg.visible.fc, mmg.infrared.encode, mmg.infrared.fc, mmg.decode]
    assert [tuple(c.weight.shape) for c in convs] == [
        (1, 3, 1, 1),
        (1, 1, 1, 1),
        (1, 3, 1, 1),
        (1, 1, 1, 1),
        (3, 1, 1, 1),
    ]
    for conv in convs:
        assert torch.all(conv.weight == 0.333) and torch.all(conv.bias == 0)
    for bn in (mmg.visible.bn, mmg.infrared.bn):
        assert bn.weight.item() == 1.0 and bn.bias.item() == 0.0
    assert sum(p.numel() for p in mmg.parameters()) == 22  # 4+2+2 per encoder, 6 for the decoder


def test_fresh_generator_value_by_hand_in_eval_mode():
    mmg = MiddleModalityGenerator().eval()
    for value in (0.5, 2.0):
        x = torch.full((1, 3, 2, 2), value)
        code = 0.333 * max(0.0, 0.333 * 3 * value)  # encode (3 -> 1), ReLU, fc, ReLU
        code = code / math.sqrt(1 + 1e-5)  # BN with running mean 0, var 1
        expected = max(0.0, 0.333 * code)  # decode (1 -> 3), ReLU
        for modality in (0, 1):
            out = mmg(x, modality)
            assert torch.allclose(out, torch.full_like(out, expected), rtol=1e-6, atol=0)
    # Pixels below the ImageNet mean (negative after normalisation) are clipped to 0.
    assert torch.all(mmg(torch.full((1, 3, 2, 2), -0.5), 0) == 0)


def test_fresh_m_images_have_three_identical_channels():
    mmg = MiddleModalityGenerator()
    out = mmg(torch.randn(2, 3, 6, 4), 0)
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])


def test_each_encoder_bn_sees_only_its_modality_and_the_decoder_is_pointwise():
    torch.manual_seed(0)
    mmg = MiddleModalityGenerator()
    with torch.no_grad():  # make the two encoders and the decoder channels differ
        for p in mmg.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x_vis, x_ir = torch.randn(3, 3, 5, 4), torch.randn(3, 3, 5, 4)
    m_vis, m_ir = mmg.forward_pair(x_vis, x_ir)
    # Training-mode BN statistics of each half come from that half only ...
    m_vis2, _ = mmg.forward_pair(x_vis, 10 * torch.randn(3, 3, 5, 4))
    assert torch.equal(m_vis, m_vis2)
    # ... and decoding the concatenation equals decoding separately, as the official note says.
    torch.testing.assert_close(m_vis, mmg(x_vis, 0), rtol=0, atol=1e-6)
    torch.testing.assert_close(m_ir, mmg(x_ir, 1), rtol=0, atol=1e-6)
    assert not torch.allclose(mmg(x_vis, 0), mmg(x_vis, 1))  # modality-specific encoders
