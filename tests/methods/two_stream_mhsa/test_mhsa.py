"""The BoTNet MHSA block against a naive loop reference and its position properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.models.resnet import Bottleneck

from methods.two_stream_mhsa.mhsa import BoTBottleneck, RelPosMHSA, rel_to_abs

B, C, HEADS, D, H, W = 2, 16, 2, 8, 4, 3


def _qkv(module: RelPosMHSA, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """q, k, v as [B, heads, H, W, d] in float64, from the module's 1x1 weights (no scaling)."""
    weight = module.qkv.weight.detach().double()[:, :, 0, 0].numpy()  # [3*h*d, C]
    proj = np.einsum('oc,bchw->bohw', weight, x.double().numpy())
    proj = proj.reshape(x.shape[0], 3, module.heads, module.dim_head, x.shape[2], x.shape[3])
    q, k, v = (proj[:, i].transpose(0, 1, 3, 4, 2) for i in range(3))
    return q, k, v


def naive_mhsa(module: RelPosMHSA, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Explicit loops over b, head, (i, j), (k, l): the README's MHSA formula.
    Returns (out [B,C,H,W], attn)."""
    q, k, v = _qkv(module, x)
    bsz, heads, height, width, d = q.shape
    s = d**-0.5
    sp = s if module.rel_pos_scaled else 1.0
    n = height * width
    attn = np.zeros((bsz, heads, n, n))
    out = np.zeros((bsz, heads * d, height, width))
    for b in range(bsz):
        for a in range(heads):
            for i in range(height):
                for j in range(width):
                    logit = np.zeros((height, width))
                    for kk in range(height):
                        for ll in range(width):
                            val = s * q[b, a, i, j] @ k[b, a, kk, ll]
                            if module.pos_enc == 'rel':
                                rh = module.rel_h.detach().double().numpy()[kk - i + height - 1]
                                rw = module.rel_w.detach().double().numpy()[ll - j + width - 1]
                                val += sp * (q[b, a, i, j] @ rh + q[b, a, i, j] @ rw)
                            elif module.pos_enc == 'abs':
                                e = (
                                    module.pos_h.detach().double().numpy()[kk]
                                    + module.pos_w.detach().double().numpy()[ll]
                                )
                                val += sp * q[b, a, i, j] @ e
                            logit[kk, ll] = val
                    p = np.exp(logit - logit.max())
                    p /= p.sum()
                    attn[b, a, i * width + j] = p.reshape(-1)
                    out[b, a * d : (a + 1) * d, i, j] = np.einsum('kl,kld->d', p, v[b, a])
    return out, attn


@pytest.mark.parametrize(
    'pos_enc,scaled', [('rel', True), ('rel', False), ('abs', True), ('none', True)]
)
def test_mhsa_matches_naive_loops(pos_enc: str, scaled: bool) -> None:
    torch.manual_seed(0)
    module = RelPosMHSA(C, (H, W), HEADS, D, pos_enc=pos_enc, rel_pos_scaled=scaled)
    x = torch.randn(B, C, H, W)
    out, attn = module(x, return_attention=True)
    ref_out, ref_attn = naive_mhsa(module, x)
    np.testing.assert_allclose(attn.detach().numpy(), ref_attn, atol=1e-5)
    np.testing.assert_allclose(out.detach().numpy(), ref_out, atol=1e-5)


def test_rel_to_abs_index_law() -> None:
    length = 5
    x = torch.randn(3, length, 2 * length - 1)
    out = rel_to_abs(x)
    assert out.shape == (3, length, length)
    for i in range(length):
        for m in range(length):
            assert torch.equal(out[:, i, m], x[:, i, m - i + length - 1])


def test_zero_tables_equal_plain_attention() -> None:
    torch.manual_seed(1)
    module = RelPosMHSA(C, (H, W), HEADS, D, pos_enc='rel')
    with torch.no_grad():
        module.rel_h.zero_()
        module.rel_w.zero_()
    x = torch.randn(B, C, H, W)
    q, k, v = (torch.from_numpy(t).float().reshape(B, HEADS, H * W, D) for t in _qkv(module, x))
    ref = F.scaled_dot_product_attention(q, k, v)  # scales by d^-1/2 itself
    ref = ref.transpose(-1, -2).reshape(B, HEADS * D, H, W)
    torch.testing.assert_close(module(x), ref, atol=1e-5, rtol=1e-5)


def _permute_tokens(x: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.flatten(2)[:, :, perm].reshape(b, c, h, w)


def test_permutation_equivariance_only_without_positions() -> None:
    torch.manual_seed(2)
    x = torch.randn(B, C, H, W)
    perm = torch.randperm(H * W)
    module = RelPosMHSA(C, (H, W), HEADS, D, pos_enc='rel')
    with torch.no_grad():
        saved = module.rel_h.clone(), module.rel_w.clone()
        module.rel_h.zero_()
        module.rel_w.zero_()
        # zero tables: a token's output depends on its content only, not on where it sits
        torch.testing.assert_close(
            module(_permute_tokens(x, perm)), _permute_tokens(module(x), perm), atol=1e-5, rtol=1e-5
        )
        module.rel_h.copy_(saved[0])
        module.rel_w.copy_(saved[1])
        diff = (module(_permute_tokens(x, perm)) - _permute_tokens(module(x), perm)).abs().max()
    assert diff > 1e-3


def test_translation_property_of_relative_logits() -> None:
    """q spatially constant and k = 0: logits depend only on (k - i, l - j).

    Then log A[n, m] = f(m - n) - log Z_n, so for two queries n1, n2 and every key pair
    (m, m + n2 - n1) inside the map, log A[n2, m + n2 - n1] - log A[n1, m] is one constant.
    """
    torch.manual_seed(3)
    height, width = 5, 4
    module = RelPosMHSA(C, (height, width), HEADS, D, pos_enc='rel')
    x = torch.randn(1, C, 1, 1).expand(1, C, height, width)  # constant input -> constant q
    with torch.no_grad():
        module.qkv.weight[HEADS * D : 2 * HEADS * D].zero_()  # k = 0
        _, attn = module(x, return_attention=True)
    log_a = attn[0].double().log().numpy()  # [heads, N, N]
    for n1 in range(height * width):
        for n2 in range(height * width):
            di, dj = n2 // width - n1 // width, n2 % width - n1 % width
            keys = [
                (k, col)
                for k in range(height)
                for col in range(width)
                if 0 <= k + di < height and 0 <= col + dj < width
            ]
            m1 = [k * width + col for k, col in keys]
            m2 = [(k + di) * width + col + dj for k, col in keys]
            diffs = log_a[:, n2, m2] - log_a[:, n1, m1]
            assert np.abs(diffs - diffs[:, :1]).max() < 1e-6
    # and the logits are not translation-invariant in absolute terms: rows differ
    assert np.abs(log_a[:, 0] - log_a[:, 1]).max() > 1e-3


def test_full_size_shapes_and_attention_rows() -> None:
    torch.manual_seed(4)
    module = RelPosMHSA(512, (18, 9), heads=4, dim_head=128)
    with torch.no_grad():
        out, attn = module(torch.randn(2, 512, 18, 9), return_attention=True)
    assert out.shape == (2, 512, 18, 9)
    assert attn.shape == (2, 4, 162, 162)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 4, 162))


def test_mhsa_parameter_counts() -> None:
    c, h, d, fh, fw = 512, 4, 128, 18, 9
    qkv = c * 3 * h * d
    counts = {
        enc: sum(p.numel() for p in RelPosMHSA(c, (fh, fw), h, d, pos_enc=enc).parameters())
        for enc in ('rel', 'abs', 'none')
    }
    assert counts == {
        'rel': qkv + (2 * fh - 1) * d + (2 * fw - 1) * d,
        'abs': qkv + (fh + fw) * d,
        'none': qkv,
    }
    assert counts['rel'] == 793_088  # 512*1536 + 35*128 + 17*128


def test_attention_stays_finite_under_fp16_autocast() -> None:
    """Large activations make fp16 q.k logits overflow; the block keeps its attention maths in
    fp32."""
    torch.manual_seed(6)
    module = RelPosMHSA(C, (H, W), HEADS, D)
    x = torch.randn(B, C, H, W) * 300.0  # q.k ~ 1e5 > fp16 max 65504
    with torch.no_grad():
        ref = module(x)
        with torch.autocast('cpu', dtype=torch.float16):
            half, attn = module(x, return_attention=True)
    assert attn.dtype == torch.float32 and half.dtype == torch.float16
    assert torch.isfinite(half).all()
    torch.testing.assert_close(half.float(), ref, rtol=2e-3, atol=ref.abs().max().item() * 2e-3)


def test_wrong_feature_size_is_refused() -> None:
    module = RelPosMHSA(C, (H, W), HEADS, D)
    with pytest.raises(ValueError, match='input_size'):
        module(torch.randn(1, C, H + 1, W))


def test_bot_block_reuses_the_bottleneck_and_keeps_shapes() -> None:
    torch.manual_seed(5)
    downsample = torch.nn.Sequential(
        torch.nn.Conv2d(64, 128, 1, bias=False), torch.nn.BatchNorm2d(128)
    )
    block = Bottleneck(64, 32, downsample=downsample)
    bot = BoTBottleneck(block, (6, 3), heads=2, dim_head=16)
    assert bot.conv1 is block.conv1 and bot.conv3 is block.conv3 and bot.downsample is downsample
    assert bot(torch.randn(2, 64, 6, 3)).shape == (2, 128, 6, 3)
    with pytest.raises(ValueError, match='width'):
        BoTBottleneck(Bottleneck(64, 32, downsample=downsample), (6, 3), heads=2, dim_head=8)
    # a strided block attends at the input size, then pools like its shortcut
    down2 = torch.nn.Sequential(
        torch.nn.Conv2d(64, 128, 1, stride=2, bias=False), torch.nn.BatchNorm2d(128)
    )
    bot2 = BoTBottleneck(
        Bottleneck(64, 32, stride=2, downsample=down2), (7, 3), heads=2, dim_head=16
    )
    assert bot2(torch.randn(2, 64, 7, 3)).shape == (2, 128, math.ceil(7 / 2), math.ceil(3 / 2))
