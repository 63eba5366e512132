"""BNNeck, GeM pooling and the AGW non-local block against direct computations."""

import pytest
import torch

from harness.models.backbones.non_local import NonLocalBlock
from harness.models.necks import BNNeck, GeneralizedMeanPooling


def test_bnneck_bias_frozen_and_unchanged_by_sgd():
    neck = BNNeck(16)
    assert isinstance(neck, torch.nn.BatchNorm1d)
    assert not neck.bias.requires_grad and neck.weight.requires_grad
    assert torch.equal(neck.weight.detach(), torch.ones(16)) and torch.equal(
        neck.bias, torch.zeros(16)
    )
    opt = torch.optim.SGD([p for p in neck.parameters() if p.requires_grad], lr=1.0)
    x = torch.randn(8, 16)
    (neck(x) * torch.randn(8, 16)).sum().backward()
    opt.step()
    assert torch.equal(neck.bias, torch.zeros(16))
    assert not torch.equal(neck.weight.detach(), torch.ones(16))
    # train-mode output: per-feature standardisation times weight, no shift
    neck.train()
    out = neck(x)
    ref = (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + neck.eps) * neck.weight
    assert torch.allclose(out, ref, atol=1e-5)


def test_bnneck_agw_init_statistics():
    torch.manual_seed(0)
    neck = BNNeck(4096, weight_std=0.01)
    w = neck.weight.detach()
    assert abs(w.mean().item() - 1.0) < 1e-3 and abs(w.std().item() - 0.01) < 1e-3
    with pytest.raises(ValueError, match='weight_std'):
        BNNeck(4, weight_std=-1)


@pytest.mark.parametrize('p', [1.0, 3.0])
def test_gem_matches_loop(p):
    x = torch.rand(2, 3, 4, 5, dtype=torch.float64)
    out = GeneralizedMeanPooling(p=p)(x)
    assert out.shape == (2, 3)
    for b in range(2):
        for c in range(3):
            vals = [float(v) ** p for v in x[b, c].flatten()]
            ref = (sum(vals) / len(vals) + 1e-12) ** (1 / p)
            assert out[b, c].item() == pytest.approx(ref, rel=1e-12)


def test_gem_between_mean_and_max_and_validates():
    x = torch.rand(3, 8, 6, 4)
    gem = GeneralizedMeanPooling(3.0)(x)
    assert (gem >= x.mean((2, 3)) - 1e-6).all() and (gem <= x.amax((2, 3)) + 1e-6).all()
    with pytest.raises(ValueError, match='B, C, H, W'):
        GeneralizedMeanPooling()(torch.rand(3, 8))
    with pytest.raises(ValueError, match='p must be'):
        GeneralizedMeanPooling(p=0)


def test_non_local_is_identity_at_init_and_uses_agw_inter_channels():
    block = NonLocalBlock(32, reduc_ratio=2)
    assert block.inter_channels == 1  # AGW: reduc_ratio // reduc_ratio
    x = torch.randn(2, 32, 5, 3)
    assert torch.equal(block(x), x)
    # parameters: g, theta, phi (C->1 conv with bias), W conv (1->C with bias), BN (2C)
    c = 32
    assert sum(p.numel() for p in block.parameters()) == 3 * (c + 1) + (c + c) + 2 * c
    assert NonLocalBlock(32, inter_channels=16).inter_channels == 16


@pytest.mark.parametrize('inter', [None, 3])
def test_non_local_matches_position_loop(inter):
    torch.manual_seed(0)
    block = NonLocalBlock(6, inter_channels=inter).double().eval()
    with torch.no_grad():
        block.W[1].weight.normal_()
        block.W[1].bias.normal_()
        block.W[1].running_mean.normal_()
        block.W[1].running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 6, 3, 4, dtype=torch.float64)
    out = block(x)

    def conv1x1(conv, v):  # v: [C_in] at one position
        return conv.weight[:, :, 0, 0] @ v + conv.bias

    bn = block.W[1]
    for b in range(2):
        pos = [(i, j) for i in range(3) for j in range(4)]
        th = [conv1x1(block.theta, x[b, :, i, j]) for i, j in pos]
        ph = [conv1x1(block.phi, x[b, :, i, j]) for i, j in pos]
        gg = [conv1x1(block.g[0], x[b, :, i, j]) for i, j in pos]
        for n, (i, j) in enumerate(pos):
            y = sum((th[n] @ ph[m]) / len(pos) * gg[m] for m in range(len(pos)))
            wy = conv1x1(block.W[0], y)
            wy = (wy - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
            assert torch.allclose(out[b, :, i, j], wy + x[b, :, i, j], atol=1e-10)
