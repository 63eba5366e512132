"""DEEN's losses (methods/deen/losses.py) by hand and against transcriptions of the official rules
(ZYK100/LLCM@886e27c DEEN/loss.py lines 8-126, model.py lines 264-268, train.py lines 272-294)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from harness.models.losses import BatchHardTripletLoss
from methods.deen.losses import CPMLoss, OrthogonalLoss, cpm_loss

from .conftest import DEMO_SIZE


def pdist(a, b):
    """loss.py pdist_torch: sqrt(clamp(|a|^2 + |b|^2 - 2ab, 1e-12))."""
    d = a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1, keepdim=True).t() - 2 * a @ b.t()
    return d.clamp(min=1e-12).sqrt()


def official_cpm(feats, labels, margin=0.2):
    """CPMLoss.forward as written: centres by position (each block cut into as many consecutive
    groups as its first block has distinct labels), 'positives' = same group index."""
    blocks = feats.chunk(4)
    p = len(labels.chunk(4)[0].unique())
    c1, c2, c3, c4 = (torch.cat([g.mean(0, keepdim=True) for g in b.chunk(p)]) for b in blocks)
    eye = torch.eye(p, dtype=torch.bool)

    def diag(d):
        return torch.stack([d[i][eye[i]].max() for i in range(p)])

    def other(d):
        return torch.stack([d[i][~eye[i]].min() for i in range(p)])

    def rank(an, ap):
        return F.margin_ranking_loss(an, ap, torch.ones_like(an), margin=margin)

    ap123, an123 = diag(pdist(c2, c3)), diag(pdist(c1, c3)).detach()
    ap124, an124 = diag(pdist(c1, c4)), diag(pdist(c2, c4)).detach()
    l123 = rank(an123, ap123) + 0.5 * (
        rank(other(pdist(c3, c3)), ap123) + rank(other(pdist(c1, c1)), ap123)
    )
    l124 = rank(an124, ap124) + 0.5 * (
        rank(other(pdist(c4, c4)), ap124) + rank(other(pdist(c2, c2)), ap124)
    )
    return (l123 + l124) / 2


def sampler_batch(p=4, k=3, dim=5, seed=0):
    """Features of 4 blocks in the sampler's order (P identities x K, same order in each block)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randperm(50, generator=g)[:p].repeat_interleave(k)
    return torch.randn(4 * p * k, dim, generator=g), ids.repeat(4)


def test_cpm_is_the_margin_when_every_centre_coincides():
    # Spec fact: c1 = c2 = c3 = c4 per identity, other identities > 0.2 apart -> the first term of
    # l123 and l124 is 0.2 (both distances sqrt(1e-12)), the halved terms are 0: CPM = 0.2.
    centres = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    feats = torch.cat([centres.repeat_interleave(2, 0)] * 4)
    feats = feats + torch.tensor([0.01, -0.01]).repeat(3).unsqueeze(1).repeat(4, 1)  # K=2 around
    labels = torch.tensor([3, 3, 7, 7, 1, 1]).repeat(4)
    assert cpm_loss(feats, labels).item() == pytest.approx(0.2, abs=1e-5)
    six = torch.cat([feats[:12], feats[12:], feats[12:]])  # original, branch 1, branch 2
    assert CPMLoss()(six, torch.cat([labels[:12]] * 3)).item() == pytest.approx(0.4, abs=1e-5)


def test_cpm_by_hand():
    # 1-D centres (K = 2 rows at c +- 0.1), identities a, b:
    # c1 = (0, 3), c2 = (1, 4), c3 = (0.5, 3.2), c4 = (1.2, 2)
    # l123: ap = |c2 - c3| = (0.5, 0.8), detached an = |c1 - c3| = (0.5, 0.2):
    #       mean(relu(0.5 - 0.5 + 0.2), relu(0.8 - 0.2 + 0.2)) = 0.5; nearest other c3 2.7, c1 3:
    #       both halved terms 0                                                     -> 0.5
    # l124: ap = |c1 - c4| = (1.2, 1.0), detached an = |c2 - c4| = (0.2, 2.0): mean(1.2, 0) = 0.6;
    #       nearest other c4 0.8: mean(1.2 - 0.8 + 0.2, 1.0 - 0.8 + 0.2) = 0.5, halved 0.25;
    #       nearest other c2 3: 0                                                   -> 0.85
    # CPM = (0.5 + 0.85) / 2 = 0.675
    centres = [(0.0, 3.0), (1.0, 4.0), (0.5, 3.2), (1.2, 2.0)]
    rows = [[c - 0.1, c + 0.1][j] for block in centres for c in block for j in (0, 1)]
    feats = torch.tensor(rows, dtype=torch.float64).unsqueeze(1)
    labels = torch.tensor([8, 8, 2, 2] * 4)
    assert cpm_loss(feats, labels).item() == pytest.approx(0.675, abs=1e-9)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_cpm_equals_the_official_positional_rule_on_sampler_batches(seed):
    feats, labels = sampler_batch(seed=seed)
    ours_in = feats.clone().requires_grad_(True)
    ref_in = feats.clone().requires_grad_(True)
    ours, ref = cpm_loss(ours_in, labels), official_cpm(ref_in, labels)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)
    ours.backward()
    ref.backward()
    assert torch.allclose(ours_in.grad, ref_in.grad, atol=1e-6)


def test_cpm_finds_identities_by_label_not_by_position():
    feats, labels = sampler_batch(p=3, k=2, seed=4)
    base = cpm_loss(feats, labels)
    perm = torch.cat(
        [torch.randperm(6, generator=torch.Generator().manual_seed(i)) + 6 * i for i in range(4)]
    )
    # Shuffled rows: the same identities and centres; the positional official rule changes value.
    assert cpm_loss(feats[perm], labels[perm]).item() == pytest.approx(base.item(), rel=1e-6)
    assert official_cpm(feats[perm], labels[perm]).item() != pytest.approx(base.item(), rel=1e-3)


def test_cpm_refuses_batches_it_cannot_pair():
    feats, labels = sampler_batch(p=3, k=2)
    bad = labels.clone()
    bad[-1] = 99  # an identity only in the generated infrared block
    with pytest.raises(ValueError, match='all four blocks'):
        cpm_loss(feats, bad)
    with pytest.raises(ValueError, match='at least two identities'):
        cpm_loss(feats[:8], torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match='4 blocks'):
        cpm_loss(feats[:6], labels[:6])


def test_orthogonal_loss_by_hand():
    # B = 1 per modality: rows [VIS, IR] x (original, branch 1, branch 2); only the branch rows
    # count: <(1, 2), (3, 1)> + <(0, 1), (2, 5)> = 5 + 5 = 10, divided by all 6 rows.
    feats = torch.tensor([[9.0, 9.0], [9.0, 9.0], [1, 2], [0, 1], [3, 1], [2, 5]])
    assert OrthogonalLoss()(feats, torch.zeros(6)).item() == pytest.approx(10 / 6)
    assert OrthogonalLoss.per_sample


def test_orthogonal_loss_is_the_official_gram_triangle():
    g = torch.Generator().manual_seed(0)
    xp = torch.rand(18, 7, generator=g)  # 6B rows, B = 3: pooled features are >= 0
    xps = xp.unsqueeze(1)  # the official [6B, 1, D] (xp.view(...).permute)
    _, x2, x3 = xps.chunk(3)
    pair = torch.cat((x2, x3), 1)
    official = torch.triu(torch.bmm(pair, pair.permute(0, 2, 1)), diagonal=1).sum() / xp.shape[0]
    assert OrthogonalLoss()(xp, torch.zeros(18)).item() == pytest.approx(official.item(), rel=1e-6)


def official_triplet(feats, labels, margin=0.3):
    """OriTripletLoss: per anchor the hardest positive (itself included) and negative."""
    d = pdist(feats, feats)
    same = labels[:, None] == labels[None, :]
    ap = torch.stack([d[i][same[i]].max() for i in range(len(d))])
    an = torch.stack([d[i][~same[i]].min() for i in range(len(d))])
    return F.margin_ranking_loss(an, ap, torch.ones_like(an), margin=margin)


def test_batch_hard_triplet_is_the_official_ori_triplet():
    feats, labels = sampler_batch(p=3, k=4, dim=6, seed=5)
    ours, _ = BatchHardTripletLoss(margin=0.3)(feats, labels)
    assert ours.item() == pytest.approx(official_triplet(feats, labels).item(), rel=1e-6)


def test_the_loss_total_is_train_py(tiny_deen, batch):
    """DEEN.loss on one batch = train.py lines 272-294 on the same network outputs (dropout mask
    drawn from the same seed)."""
    model = tiny_deen(num_classes=4).train()
    images, samples = batch(num_ids=4, k=3, size=DEMO_SIZE)
    torch.manual_seed(11)
    out = model.loss(images, samples)
    torch.manual_seed(11)
    vis, ir = images[samples['modality'] == 0], images[samples['modality'] == 1]
    stem = torch.cat((model.backbone.forward_stream(vis, 0), model.backbone.forward_stream(ir, 1)))
    heads = model.heads(stem)
    feat1, out1 = heads['pool'], heads['logits']
    label1, label2 = samples['label'][:12], samples['label'][12:]
    labels = torch.cat((label1, label2, label1, label2, label1, label2))
    labs = torch.cat((label1, label2, label1, label2))
    loss_id = F.cross_entropy(out1, labels)
    loss_tri = official_triplet(feat1, labels)
    ft1, ft2, ft3 = feat1.chunk(3)
    loss_cpm = 0.8 * (
        official_cpm(torch.cat((ft1, ft2)), labs) + official_cpm(torch.cat((ft1, ft3)), labs)
    )
    xp = feat1.unsqueeze(1)
    _, x2, x3 = xp.chunk(3)
    pair = torch.cat((x2, x3), 1)
    loss_ort = 0.01 * torch.triu(torch.bmm(pair, pair.transpose(1, 2)), diagonal=1).sum() / len(xp)
    expected = dict(loss_id=loss_id, loss_tri=loss_tri, loss_cpm=loss_cpm, loss_ort=loss_ort)
    assert sorted(k for k in out if k.startswith('loss')) == sorted(expected)
    for key, value in expected.items():
        assert out[key].item() == pytest.approx(value.item(), rel=1e-5, abs=1e-7), key
    assert loss_ort.item() > 0 and out['acc_id'].shape == () and 'acc_tri' in out
