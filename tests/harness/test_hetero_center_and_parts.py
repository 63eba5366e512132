"""Hetero-center losses against hand computations and loops; the horizontal part split."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from harness.models.losses import hetero_center_loss, hetero_center_triplet_loss
from harness.models.necks import HorizontalPartPooling, chunk_windows, part_windows

VIS, IR, AUX = 0, 1, 2


def _hand_example() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hand-computed HC example: P = 2 identities, K = 2 per modality, 2-d features."""
    feats = torch.tensor(
        [
            [1, 0],
            [0, 1],
            [0, 1],
            [0, 1],  # V: id 0, id 0, id 1, id 1
            [1, 0],
            [1, 0],
            [0.6, 0.8],
            [0, 1],
        ]
    )  # I: id 0, id 0, id 1, id 1
    labels = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    modality = torch.tensor([VIS] * 4 + [IR] * 4)
    return feats, labels, modality


def test_hetero_center_hand_example() -> None:
    feats, labels, modality = _hand_example()
    # id 0: c_V = (.5,.5), c_I = (1,0) -> |d|^2 = .25+.25 = .5;
    # id 1: c_V = (0,1), c_I = (.3,.9) -> .09+.01 = .1
    pairs = [(VIS, IR)]
    assert hetero_center_loss(feats, labels, modality, pairs).item() == pytest.approx(0.5 + 0.1)
    assert hetero_center_loss(
        feats, labels, modality, pairs, reduction='mean'
    ).item() == pytest.approx(0.3)
    # margin .1: max(0, .5-.1) + max(0, .1-.1)
    assert hetero_center_loss(feats, labels, modality, pairs, margin=0.1).item() == pytest.approx(
        0.4
    )


def _hc_loops(feats, labels, modality, pairs, margin=0.0):
    total = 0.0
    for m1, m2 in pairs:
        for y in sorted(set(labels.tolist())):
            s1 = (labels == y) & (modality == m1)
            s2 = (labels == y) & (modality == m2)
            if s1.any() and s2.any():
                d = ((feats[s1].mean(0) - feats[s2].mean(0)) ** 2).sum().item()
                total += max(0.0, d - margin)
    return total


def test_hetero_center_random_batch_is_order_free_and_matches_loops() -> None:
    torch.manual_seed(0)
    labels = torch.tensor([3, 3, 7, 7, 9, 9] * 3)
    modality = torch.tensor([VIS] * 6 + [AUX] * 6 + [IR] * 6)
    feats = F.normalize(torch.randn(18, 5), dim=1)
    pairs = [(VIS, IR), (AUX, IR), (VIS, AUX)]
    expected = _hc_loops(feats, labels, modality, pairs)
    assert hetero_center_loss(feats, labels, modality, pairs).item() == pytest.approx(
        expected, rel=1e-5
    )
    perm = torch.randperm(18)
    assert hetero_center_loss(
        feats[perm], labels[perm], modality[perm], pairs
    ).item() == pytest.approx(expected, rel=1e-5)
    # an identity seen in one modality only contributes nothing
    keep = ~((labels == 9) & (modality == IR))
    assert hetero_center_loss(
        feats[keep], labels[keep], modality[keep], [(VIS, IR)]
    ).item() == pytest.approx(
        _hc_loops(feats[keep], labels[keep], modality[keep], [(VIS, IR)]), rel=1e-5
    )


def test_hetero_center_triplet_hand_example() -> None:
    feats, labels, modality = _hand_example()
    # centres V0 (.5,.5) V1 (0,1) I0 (1,0) I1 (.3,.9); margin .3
    # V0: d_ap = |V0-I0| = sqrt(.5), d_an = min(|V0-V1|, |V0-I1|) = min(sqrt(.5), sqrt(.2))
    #     -> .3+.70711-.44721
    # V1: d_ap = sqrt(.1), d_an = min(sqrt(.5), sqrt(2)) -> 0;
    # I0: sqrt(.5) vs min(sqrt(2), sqrt(1.3)) -> 0
    # I1: d_ap = sqrt(.1), d_an = min(sqrt(.2), sqrt(1.3)) -> .3+.31623-.44721
    v0 = 0.3 + 0.5**0.5 - 0.2**0.5
    i1 = 0.3 + 0.1**0.5 - 0.2**0.5
    expected = (v0 + i1) / 4
    assert expected == pytest.approx(0.18223, abs=1e-5)
    assert hetero_center_triplet_loss(feats, labels, modality, margin=0.3).item() == pytest.approx(
        expected, abs=1e-5
    )


def test_hetero_center_triplet_random_matches_loops() -> None:
    torch.manual_seed(1)
    labels = torch.tensor([0, 0, 4, 4, 5, 5] * 3)
    modality = torch.tensor([VIS] * 6 + [AUX] * 6 + [IR] * 6)
    feats = torch.randn(18, 4)
    keys = sorted({(int(y), int(m)) for y, m in zip(labels, modality)})
    centres = {key: feats[(labels == key[0]) & (modality == key[1])].mean(0) for key in keys}
    losses = []
    for a in keys:
        d = {b: max(float(((centres[a] - centres[b]) ** 2).sum()), 1e-12) ** 0.5 for b in keys}
        d_ap = max(v for b, v in d.items() if b[0] == a[0])
        d_an = min(v for b, v in d.items() if b[0] != a[0])
        losses.append(max(0.0, 0.3 + d_ap - d_an))
    expected = sum(losses) / len(losses)
    assert hetero_center_triplet_loss(feats, labels, modality).item() == pytest.approx(
        expected, rel=1e-5
    )


@pytest.mark.parametrize(
    'height,parts', [(18, 6), (6, 6), (18, 3), (8, 6), (7, 3), (9, 1), (10, 4)]
)
def test_part_windows_follow_tslfn_pooling(height: int, parts: int) -> None:
    """Windows equal avg_pool2d with TSLFN's kernel (H - (p-1)*floor(H/p)) and stride floor(H/p)."""
    torch.manual_seed(2)
    x = torch.randn(2, 3, height, 4)
    stride = height // parts
    kernel = height - (parts - 1) * stride
    ref = F.avg_pool2d(x, kernel_size=(kernel, 4), stride=(stride, 4)).squeeze(-1)  # [2, 3, parts]
    torch.testing.assert_close(HorizontalPartPooling(parts, 'avg')(x), ref)
    windows = part_windows(height, parts)
    assert len(windows) == parts and windows[0][0] == 0 and windows[-1][1] == height
    if height % parts == 0:  # equal, disjoint stripes covering the map
        assert windows == [(k * height // parts, (k + 1) * height // parts) for k in range(parts)]


def test_part_windows_non_divisible_case() -> None:
    # 8 rows, 6 parts: stride 1, window 3 -> overlapping stripes (TSLFN's code, not a taller last
    # stripe)
    assert part_windows(8, 6) == [(0, 3), (1, 4), (2, 5), (3, 6), (4, 7), (5, 8)]
    # 7 rows, 3 parts: stride 2, window 3
    assert part_windows(7, 3) == [(0, 3), (2, 5), (4, 7)]
    with pytest.raises(ValueError, match='num_parts'):
        part_windows(4, 6)


def test_max_and_gem_part_pooling() -> None:
    torch.manual_seed(3)
    x = torch.rand(2, 3, 6, 2)
    stripes = [x[:, :, 2 * k : 2 * k + 2].reshape(2, 3, -1) for k in range(3)]
    torch.testing.assert_close(
        HorizontalPartPooling(3, 'max')(x), torch.stack([s.max(-1).values for s in stripes], 2)
    )
    gem = torch.stack([(s.pow(3).mean(-1) + 1e-12).pow(1 / 3) for s in stripes], 2)
    torch.testing.assert_close(HorizontalPartPooling(3, 'gem', gem_p=3.0)(x), gem)


@pytest.mark.parametrize('height,parts', [(8, 4), (4, 4), (7, 4), (12, 6)])
def test_chunk_split_is_torch_chunk(height: int, parts: int) -> None:
    """MMN's stripes: torch.chunk along the height, each average-pooled."""
    torch.manual_seed(4)
    x = torch.randn(2, 3, height, 5)
    ref = torch.stack([c.mean(dim=(2, 3)) for c in torch.chunk(x, parts, dim=2)], dim=2)
    torch.testing.assert_close(HorizontalPartPooling(parts, 'avg', split='chunk')(x), ref)
    heights = [c.shape[2] for c in torch.chunk(x, parts, 2)]
    assert [b - a for a, b in chunk_windows(height, parts)] == heights


def test_chunk_split_refuses_heights_that_give_fewer_stripes() -> None:
    with pytest.raises(ValueError, match='cannot be cut into 4 stripes'):
        chunk_windows(6, 4)  # torch.chunk gives 3 stripes of 2 rows
    with pytest.raises(ValueError, match='split'):
        HorizontalPartPooling(4, split='pcb')
