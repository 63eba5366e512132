"""The DEE module (methods/deen/dee.py): batch tripling, the branch formula, init, parameter
counts (ZYK100/LLCM@886e27c DEEN/model.py lines 91-121)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from methods.deen.dee import DEEBranch, DiverseEmbeddingExpansion


def test_the_batch_triples_original_first_in_training_and_at_test():
    torch.manual_seed(0)
    dee = DiverseEmbeddingExpansion(16)
    x = torch.randn(5, 16, 6, 4)
    dee.eval()
    out = dee(x)
    assert out.shape == (15, 16, 6, 4) and dee.num_embeddings == 3
    assert torch.equal(out[:5], x)  # dropout is off at test: the original rows pass unchanged
    b1, b2 = out[5:10], out[10:]
    assert torch.equal(b1, dee.branches[0](x)) and torch.equal(b2, dee.branches[1](x))
    assert b1.abs().sum() > 0 and not torch.allclose(b1, b2)
    dee.train()  # Dropout(0.01) on all 15 rows, the original ones included
    torch.manual_seed(1)
    out = dee(torch.ones(400, 16, 6, 4))
    dropped = out[:400] == 0
    assert out.shape[0] == 1200 and 0.005 < dropped.float().mean() < 0.015
    assert torch.allclose(out[:400][~dropped], torch.full_like(out[:400][~dropped], 1 / 0.99))


def test_a_branch_averages_three_dilated_convolutions_then_relu_and_a_biased_1x1():
    torch.manual_seed(0)
    branch = DEEBranch(8)
    x = torch.randn(2, 8, 7, 5)
    mean = (
        sum(
            F.conv2d(x, conv.weight, padding=d, dilation=d)
            for conv, d in zip(branch.convs, (1, 2, 3))
        )
        / 3
    )
    expected = F.conv2d(F.relu(mean), branch.proj.weight, branch.proj.bias)
    assert torch.allclose(branch(x), expected, atol=1e-6)
    assert [c.dilation for c in branch.convs] == [(1, 1), (2, 2), (3, 3)]
    assert all(c.bias is None and c.out_channels == 2 for c in branch.convs)
    assert branch.proj.bias is not None and branch.proj.kernel_size == (1, 1)


def test_convolutions_are_kaiming_normal_fan_in():
    torch.manual_seed(0)
    branch = DEEBranch(1024)
    for conv in (*branch.convs, branch.proj):
        fan_in = conv.weight[0].numel()
        assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.05)
        assert conv.weight.mean().abs().item() < 0.1 * math.sqrt(2 / fan_in)


@pytest.mark.parametrize(('channels', 'count'), [(1024, 14_682_112), (512, 3_671_040)])
def test_parameter_counts(channels, count):
    assert sum(p.numel() for p in DiverseEmbeddingExpansion(channels).parameters()) == count
