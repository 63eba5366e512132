"""CAJ's channel augmentations: every branch does exactly what ICCV21_CAJ's code does, and the
branches come up with the official frequencies (ChannelExchange(gray=2): R, G, B 1/3 each, never
grey; ChannelAdapGray(0.5): R, G, B 1/4, grey 1/8, unchanged 1/8)."""

from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from harness.data.transforms import Normalize
from methods.caj.transforms import (
    CIFAR_MEAN,
    ChannelAdapGray,
    ChannelExchange,
    ChannelRandomErasing,
)

DRAWS = 4000


def image(seed: int = 0, size=(16, 8)) -> torch.Tensor:
    """A normalised float image whose three channels differ everywhere."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(3, *size, generator=g) + torch.tensor([0.0, 5.0, -5.0]).view(3, 1, 1)


def outcome(out: torch.Tensor, img: torch.Tensor) -> str:
    """Which official branch produced ``out`` (exact equality with each branch's formula)."""
    candidates = {
        'R': img[0].expand_as(img),
        'G': img[1].expand_as(img),
        'B': img[2].expand_as(img),
        # ChannelAug.py line 89 / data_loader.py line 39, summed in this order
        'grey': (0.2989 * img[0] + 0.5870 * img[1] + 0.1140 * img[2]).expand_as(img),
        'unchanged': img,
    }
    hits = [name for name, c in candidates.items() if torch.equal(out, c)]
    assert len(hits) == 1, f'output matches {hits}, not exactly one official branch'
    return hits[0]


def frequencies(op, seed: int = 0) -> dict[str, float]:
    torch.manual_seed(seed)
    img = image()
    counts = Counter(outcome(op(img.clone()), img) for _ in range(DRAWS))
    return {k: v / DRAWS for k, v in counts.items()}


def test_channel_exchange_copies_one_channel_never_grey():
    freq = frequencies(ChannelExchange(gray=2))
    assert set(freq) == {'R', 'G', 'B'}
    for name in 'RGB':
        assert freq[name] == pytest.approx(1 / 3, abs=0.03)  # binomial sd 0.0075


def test_channel_exchange_grey_branch_exists_above_gray_2():
    freq = frequencies(ChannelExchange(gray=3))  # randint(0, 3): idx 3 -> grey
    assert set(freq) == {'R', 'G', 'B', 'grey'}
    assert freq['grey'] == pytest.approx(1 / 4, abs=0.03)


def test_channel_adap_gray_frequencies():
    freq = frequencies(ChannelAdapGray(p=0.5))
    assert set(freq) == {'R', 'G', 'B', 'grey', 'unchanged'}
    for name in 'RGB':
        assert freq[name] == pytest.approx(1 / 4, abs=0.03)
    assert freq['grey'] == pytest.approx(1 / 8, abs=0.025)
    assert freq['unchanged'] == pytest.approx(1 / 8, abs=0.025)


def test_channel_adap_gray_probability_gates_only_the_grey_branch():
    freq = frequencies(ChannelAdapGray(p=1.0))
    assert 'unchanged' not in freq and freq['grey'] == pytest.approx(1 / 4, abs=0.03)
    freq = frequencies(ChannelAdapGray(p=0.0))
    assert 'grey' not in freq and freq['unchanged'] == pytest.approx(1 / 4, abs=0.03)


def test_channel_ops_do_not_write_into_their_input():
    img = image()
    before = img.clone()
    torch.manual_seed(0)
    for _ in range(50):
        ChannelExchange()(img)
        ChannelAdapGray()(img)
        ChannelRandomErasing(p=1.0)(img)
    assert torch.equal(img, before)


def test_channel_random_erasing_fills_a_box_with_the_cifar_means():
    torch.manual_seed(0)
    h, w = 64, 32
    erased, areas, aspects = 0, [], []
    for _ in range(2000):
        img = image(size=(h, w))
        out = ChannelRandomErasing(p=0.5)(img)
        changed = (out != img).any(dim=0)
        if not changed.any():
            continue
        erased += 1
        rows, cols = torch.nonzero(changed, as_tuple=True)
        top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        box = out[:, top:bottom, left:right]
        # one rectangle, all three channels set to the CIFAR-10 means (normalised space)
        assert torch.equal(box, torch.tensor(CIFAR_MEAN).view(3, 1, 1).expand_as(box))
        assert int(changed.sum()) == int((bottom - top) * (right - left))
        assert torch.equal(out[:, ~changed], img[:, ~changed])
        eh, ew = int(bottom - top), int(right - left)
        areas.append(eh * ew / (h * w))
        aspects.append(eh / ew)
    assert erased / 2000 == pytest.approx(0.5, abs=0.04)
    # area U(0.02, 0.4) x H x W, aspect U(0.3, 1/0.3), both up to rounding of h and w
    assert (
        0.015 < min(areas) and max(areas) < 0.42 and np.mean(areas) == pytest.approx(0.21, abs=0.03)
    )
    assert 0.25 < min(aspects) and max(aspects) < 3.7


def test_channel_transforms_refuse_uint8_images():
    img = torch.zeros(3, 8, 4, dtype=torch.uint8)
    for op in (ChannelRandomErasing(p=1.0), ChannelExchange(), ChannelAdapGray()):
        with pytest.raises(ValueError, match="dict\\(type='Normalize'\\)"):
            op(img)


def test_normalize_is_torchvision_to_tensor_and_normalize():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (20, 10, 3), dtype=np.uint8)
    reference = T.Compose(
        [T.ToTensor(), T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])]
    )(Image.fromarray(arr))
    ours = Normalize()(torch.from_numpy(arr).permute(2, 0, 1).contiguous())
    assert ours.dtype == torch.float32 and torch.allclose(ours, reference, atol=1e-6)
    with pytest.raises(ValueError, match='normalises twice'):
        Normalize()(ours)
