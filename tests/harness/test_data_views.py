"""Several augmented views per training image (``train_views``): how the dataset makes them and
how :func:`collate_views` lays out the batch; configs without views are served as before."""

import pytest
import torch

from harness.data.datasets import VIReIDTrainSet, collate_views
from harness.data.transforms import Normalize, build_views
from protocols.datasets.base import Modality


def item(label: int, modality: int, index: int, views: list[torch.Tensor]) -> dict:
    return dict(
        inputs=views, data_samples=dict(label=label, modality=modality, cam=modality, index=index)
    )


def test_collate_lays_out_modality_then_view_then_sampler_order():
    def img(value: float) -> torch.Tensor:
        return torch.full((3, 2, 1), value)

    batch = [
        item(0, 0, 10, [img(0.0), img(0.5)]),
        item(1, 0, 11, [img(1.0), img(1.5)]),
        item(0, 1, 20, [img(2.0)]),
        item(1, 1, 21, [img(3.0)]),
    ]
    out = collate_views(batch)
    assert out['inputs'][:, 0, 0, 0].tolist() == [0.0, 1.0, 0.5, 1.5, 2.0, 3.0]
    samples = out['data_samples']
    assert samples['label'].tolist() == [0, 1, 0, 1, 0, 1]  # cat(l1, l1, l2)
    assert samples['modality'].tolist() == [0, 0, 0, 0, 1, 1]
    assert samples['view'].tolist() == [0, 0, 1, 1, 0, 0]
    assert samples['index'].tolist() == [10, 11, 10, 11, 20, 21]
    assert samples['label'].dtype == torch.int64


def test_collate_refuses_mixed_dtypes_and_view_counts():
    uint8, floats = torch.zeros(3, 2, 1, dtype=torch.uint8), torch.zeros(3, 2, 1)
    with pytest.raises(ValueError, match='different dtypes'):
        collate_views([item(0, 0, 0, [uint8]), item(0, 1, 1, [floats])])
    with pytest.raises(ValueError, match='different numbers of views'):
        collate_views([item(0, 0, 0, [floats]), item(1, 0, 1, [floats, floats])])


def test_build_views_checks_its_config():
    assert build_views(None, (8, 4)) is None
    views = build_views(dict(visible=[[], [dict(type='RandomHorizontalFlip', p=1.0)]]), (8, 4))
    assert len(views[Modality.VISIBLE]) == 2 and len(views[Modality.INFRARED]) == 1
    img = torch.arange(8.0).view(1, 2, 4).expand(3, 2, 4)
    assert torch.equal(views[Modality.VISIBLE][1](img), img.flip(-1))
    assert torch.equal(views[Modality.INFRARED][0](img), img)  # left out: one plain view
    with pytest.raises(ValueError, match='unknown modality'):
        build_views(dict(thermal=[[]]), (8, 4))
    with pytest.raises(ValueError, match='list of views'):
        build_views(dict(visible=[dict(type='RandomHorizontalFlip')]), (8, 4))
    with pytest.raises(ValueError, match='list of views'):
        build_views(dict(visible=[]), (8, 4))


def test_views_of_the_training_set(regdb_root):
    pipeline = [dict(type='Pad', padding=2), dict(type='RandomCrop'), dict(type='Normalize')]
    protocol = dict(split=1)
    plain = VIReIDTrainSet('regdb', str(regdb_root), protocol, (16, 8), pipeline[:2])
    sample = plain[0]
    assert isinstance(sample['inputs'], torch.Tensor) and sample['inputs'].dtype == torch.uint8
    viewed = VIReIDTrainSet(
        'regdb', str(regdb_root), protocol, (16, 8), pipeline, views=dict(visible=[[], []])
    )
    vis = next(i for i in range(len(viewed)) if viewed.modalities[i] == Modality.VISIBLE)
    ir = next(i for i in range(len(viewed)) if viewed.modalities[i] == Modality.INFRARED)
    torch.manual_seed(0)
    views = [viewed[vis]['inputs'] for _ in range(10)]
    assert all(len(v) == 2 and v[0].dtype == torch.float32 for v in views)
    # each view runs the shared pipeline with its own draws (here: the crop offset)
    assert any(not torch.equal(v[0], v[1]) for v in views)
    assert len(viewed[ir]['inputs']) == 1
    expected = Normalize()(torch.from_numpy(viewed.images[vis].copy()).permute(2, 0, 1))
    unpadded = VIReIDTrainSet(
        'regdb',
        str(regdb_root),
        protocol,
        (16, 8),
        [dict(type='Normalize')],
        views=dict(visible=[[]]),
    )
    assert torch.equal(unpadded[vis]['inputs'][0], expected)
