"""MFA blocks (methods/deen/mfa.py): identity at init, CNL and PNL against naive references written
from the official shapes (ZYK100/LLCM@886e27c DEEN/model.py lines 124-203), parameter counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from methods.deen.mfa import ChannelRelation, MFABlock, SpatialRelation


def _live_bn(module: nn.Module, seed: int = 0) -> nn.Module:
    """The W BatchNorms made non-zero (they start at zero), eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return module.eval()


def _maps(high: int, low: int, size: tuple[int, int], downsample: bool, b: int = 2):
    g = torch.Generator().manual_seed(1)
    h, w = size
    x_l = torch.randn(b, low, h, w, generator=g)
    hh, ww = ((h + 1) // 2, (w + 1) // 2) if downsample else (h, w)
    return torch.randn(b, high, hh, ww, generator=g), x_l


@pytest.mark.parametrize('downsample', [False, True])
def test_a_fresh_block_is_the_identity(downsample):
    block = MFABlock(32, 16, downsample)
    x, x0 = _maps(32, 16, (8, 6), downsample)
    for mode in (block.train, block.eval):
        mode()
        assert torch.equal(block(x, x0), x)


def naive_cnl(cnl: ChannelRelation, x_h, x_l):
    """Channel affinity by explicit sums: A[i, j] = sum_n theta[i, n] phi[j, n] / C_l,
    y[i, m] = sum_j A[i, j] g[j, m] on the low map's pixels m; no softmax."""
    outs = []
    for b in range(len(x_h)):
        g = cnl.g(x_l[b : b + 1])[0].flatten(1)  # [C_l, N_l]
        theta = cnl.theta(x_h[b : b + 1])[0].flatten(1)  # [C_l, N_h]
        phi = cnl.phi(x_l[b : b + 1])[0].flatten(1)  # [C_l, N_h]
        c = g.shape[0]
        a = torch.zeros(c, c, dtype=torch.float64)
        for i in range(c):
            for j in range(c):
                a[i, j] = (theta[i].double() * phi[j].double()).sum() / c
        y = (a @ g.double()).float().reshape(1, c, *x_l.shape[2:])
        outs.append(cnl.W(y) + x_h[b : b + 1])
    return torch.cat(outs)


def fold(m):
    """``[c, H, W]`` -> ``[HW/2, 2c]`` tokens as the official ``.view(B, 2c, -1)`` and transpose
    make them, by index arithmetic: token t, entry 2k + j = channel k at flat pixel j*HW/2 + t."""
    c, h, w = m.shape
    flat, half = m.reshape(c, h * w), h * w // 2
    return torch.stack(
        [torch.stack([flat[r // 2, (r % 2) * half + t] for r in range(2 * c)]) for t in range(half)]
    )


def unfold(tokens, c, h, w):
    """The inverse of :func:`fold`: ``[HW/2, 2c]`` -> ``[c, H, W]``."""
    half = h * w // 2
    out = torch.zeros(c, h * w, dtype=tokens.dtype)
    for t in range(half):
        for r in range(2 * c):
            out[r // 2, (r % 2) * half + t] = tokens[t, r]
    return out.reshape(c, h, w)


def naive_pnl(pnl: SpatialRelation, x_h, x_l):
    outs = []
    for b in range(len(x_h)):
        g = fold(pnl.g(x_l[b : b + 1])[0]).double()  # [T_l, C_l]
        theta = fold(pnl.theta(x_h[b : b + 1])[0]).double()  # [T_h, C_l]
        phi = fold(pnl.phi(x_l[b : b + 1])[0]).double()  # [T_l, C_l]
        energy = theta @ phi.T / len(phi)
        y = unfold((energy @ g).float(), pnl.inter, *x_h.shape[2:])
        outs.append(pnl.W(y[None]) + x_h[b : b + 1])
    return torch.cat(outs)


@pytest.mark.parametrize(('size', 'downsample'), [((6, 4), False), ((8, 6), True), ((8, 3), True)])
def test_cnl_matches_the_explicit_channel_affinity(size, downsample):
    cnl = _live_bn(ChannelRelation(12, 8, downsample))
    x_h, x_l = _maps(12, 8, size, downsample)
    with torch.no_grad():
        assert torch.allclose(cnl(x_h, x_l), naive_cnl(cnl, x_h, x_l), atol=1e-5)


@pytest.mark.parametrize('size', [(6, 4), (4, 3), (10, 2)])
def test_pnl_folds_pixel_pairs_into_tokens_as_the_official_view(size):
    pnl = _live_bn(SpatialRelation(12, 8))
    x_h, x_l = _maps(12, 8, size, downsample=False)
    with torch.no_grad():
        out = pnl(x_h, x_l)
        assert torch.allclose(out, naive_pnl(pnl, x_h, x_l), atol=1e-5)
        # A per-pixel non-local block (tokens = pixels, c features) is another function.
        theta = pnl.theta(x_h).flatten(2).transpose(1, 2)
        phi = pnl.phi(x_l).flatten(2)
        g = pnl.g(x_l).flatten(2).transpose(1, 2)
        energy = theta @ phi
        y = (energy / energy.shape[-1] @ g).transpose(1, 2).reshape(2, 4, *size)
        assert not torch.allclose(out, pnl.W(y) + x_h, atol=1e-3)


def test_pnl_on_a_half_size_high_map():
    pnl = _live_bn(SpatialRelation(12, 8))
    x_h, x_l = _maps(12, 8, (8, 6), downsample=True)
    with torch.no_grad():
        assert torch.allclose(pnl(x_h, x_l), naive_pnl(pnl, x_h, x_l), atol=1e-5)


def test_odd_maps_are_refused_with_the_fix():
    block = MFABlock(12, 8, downsample=False)
    x, x0 = _maps(12, 8, (3, 5), downsample=False)
    with pytest.raises(ValueError, match=r'cannot be folded into 8 rows.*input size'):
        block(x, x0)
    with pytest.raises(ValueError, match='does not line up'):
        block(torch.randn(1, 12, 4, 4), torch.randn(1, 8, 6, 4))


@pytest.mark.parametrize(
    ('high', 'low', 'downsample', 'count'),
    [(256, 64, False, 63_264), (512, 256, True, 594_048), (1024, 512, True, 2_367_744)],
)
def test_parameter_counts_of_mfa1_to_mfa3(high, low, downsample, count):
    block = MFABlock(high, low, downsample)
    assert sum(p.numel() for p in block.parameters()) == count
    assert block.cnl.phi.stride == block.cnl.W[0].stride == ((2, 2) if downsample else (1, 1))
