"""SYSU gallery samplers (official rand_perm_cam.mat, AGW seeded) and RegDB query/gallery."""

from __future__ import annotations

import os
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat

from protocols.datasets.base import DatasetLayoutError, Modality
from protocols.datasets.regdb import RegDB
from protocols.datasets.sysu import SYSUMM01
from protocols.trials import (
    load_rand_perm,
    official_gallery,
    regdb_query_gallery,
    seeded_gallery,
    sysu_galleries,
    sysu_setting,
)

CAMS = {'all': ['cam1', 'cam2', 'cam4', 'cam5'], 'indoor': ['cam1', 'cam2']}


def _test_ids(root: Path) -> list[int]:
    return [int(t) for t in (root / 'exp' / 'test_id.txt').read_text().splitlines()[0].split(',')]


def official_reference(root: Path, mode: str, shots: int, trial: int) -> list[str]:
    """The MATLAB / MPANet rule from the .mat: camera, then id, row ``trial``, first ``shots``
    numbers."""
    perm = loadmat(str(root / 'exp' / 'rand_perm_cam.mat'))['rand_perm_cam']
    names = []
    for cam in [int(c[-1]) for c in CAMS[mode]]:
        cam_perm = perm[cam - 1][0].squeeze()
        for pid in sorted(_test_ids(root)):
            if pid - 1 >= len(cam_perm):
                continue
            for k in cam_perm[pid - 1][trial][:shots]:
                names.append(f'cam{cam}/{pid:04d}/{int(k):04d}.jpg')
    return names


def agw_reference(root: Path, mode: str, trial: int, shots: int = 1) -> list[str]:
    """AGW's process_gallery_sysu as written there: global random.seed, sorted full paths,
    choice."""
    random.seed(trial)
    ids = [f'{x:04d}' for x in _test_ids(root)]
    files_rgb = []
    for id in sorted(ids):
        for cam in CAMS[mode]:
            img_dir = os.path.join(str(root), cam, id)
            if os.path.isdir(img_dir):
                new_files = sorted([img_dir + '/' + i for i in os.listdir(img_dir)])
                if shots == 1:
                    files_rgb.append(random.choice(new_files))
                else:
                    files_rgb.extend(random.sample(new_files, shots))
    return [os.path.relpath(f, root).replace(os.sep, '/') for f in files_rgb]


def _pairs(ds: SYSUMM01, mode: str) -> set[tuple[int, int]]:
    cams = [int(c[-1]) for c in CAMS[mode]]
    return {(r.pid, r.cam) for r in ds.gallery_candidates() if r.cam in cams}


@pytest.mark.parametrize('mode', ['all', 'indoor'])
@pytest.mark.parametrize('shots', [1, 10])
def test_official_matches_mat_rule(sysu_root: Path, mode: str, shots: int) -> None:
    ds = SYSUMM01(sysu_root)
    cand = ds.gallery_candidates()
    galleries = sysu_galleries(ds, mode, shots, 'official', trials=10)
    assert len(galleries) == 10
    for trial, gallery in enumerate(galleries):
        assert [cand[i].path for i in gallery] == official_reference(sysu_root, mode, shots, trial)
        assert len(gallery) == shots * len(_pairs(ds, mode))
        assert len(set(gallery.tolist())) == len(gallery)
    assert any(not np.array_equal(galleries[0], g) for g in galleries[1:])
    again = sysu_galleries(ds, mode, shots, 'official', trials=10)
    assert all(np.array_equal(a, b) for a, b in zip(galleries, again))


@pytest.mark.parametrize('mode', ['all', 'indoor'])
@pytest.mark.parametrize('shots', [1, 10])
def test_seeded_matches_agw_rule(sysu_root: Path, mode: str, shots: int) -> None:
    ds = SYSUMM01(sysu_root)
    cand = ds.gallery_candidates()
    galleries = sysu_galleries(ds, mode, shots, 'seeded', trials=10)
    for trial, gallery in enumerate(galleries):
        assert [cand[i].path for i in gallery] == agw_reference(sysu_root, mode, trial, shots)
        assert len(gallery) == shots * len(_pairs(ds, mode))
        per_pair = {}
        for i in gallery:
            per_pair[(cand[i].pid, cand[i].cam)] = per_pair.get((cand[i].pid, cand[i].cam), 0) + 1
        assert set(per_pair) == _pairs(ds, mode) and set(per_pair.values()) == {shots}
    assert any(not np.array_equal(galleries[0], g) for g in galleries[1:])


def test_seeded_leaves_global_random_alone(sysu_root: Path) -> None:
    ds = SYSUMM01(sysu_root)
    random.seed(1234)
    expected = random.random()
    random.seed(1234)
    seeded_gallery(ds, 'all', 1, trial=3)
    assert random.random() == expected


def test_seeded_lists_stray_files_like_agw(sysu_copy: Path) -> None:
    ds0 = SYSUMM01(sysu_copy)
    pid = min(p for p in ds0.test_ids if (4, p) in ds0.id_dirs)
    folder = sysu_copy / 'cam4' / ds0.id_dirs[(4, pid)]
    (folder / 'Thumbs.db').write_bytes(b'junk')
    ds = SYSUMM01(sysu_copy)
    cand = ds.gallery_candidates()
    for trial in range(10):
        expected = agw_reference(sysu_copy, 'all', trial)
        with pytest.warns(UserWarning, match='non-image file'):
            if any(p.endswith('Thumbs.db') for p in expected):
                with pytest.raises(DatasetLayoutError, match='not an image'):
                    seeded_gallery(ds, 'all', 1, trial)
            else:
                assert [cand[i].path for i in seeded_gallery(ds, 'all', 1, trial)] == expected


def test_official_needs_rand_perm(sysu_copy: Path) -> None:
    (sysu_copy / 'exp' / 'rand_perm_cam.mat').unlink()
    ds = SYSUMM01(sysu_copy)
    with pytest.raises(DatasetLayoutError, match='wuancong/SYSU-MM01') as err:
        sysu_galleries(ds, 'all', 1, 'official')
    assert 'evaluation/data_split' in str(err.value) and 'rand_perm_cam.mat' in str(err.value)
    assert len(sysu_galleries(ds, 'all', 1, 'seeded', trials=2)) == 2  # seeded needs no .mat


def test_official_image_missing_on_disk(sysu_copy: Path) -> None:
    ds0 = SYSUMM01(sysu_copy)
    first = ds0.gallery_candidates()[
        official_gallery(ds0, load_rand_perm(ds0.rand_perm_path), 'all', 1, 0)[0]
    ]
    (sysu_copy / first.path).unlink()
    with pytest.raises(DatasetLayoutError, match='selects image'):
        sysu_galleries(SYSUMM01(sysu_copy), 'all', 1, 'official', trials=1)


def test_sampler_argument_checks(sysu_root: Path) -> None:
    ds = SYSUMM01(sysu_root)
    with pytest.raises(ValueError, match='sampler'):
        sysu_galleries(ds, 'all', 1, 'random')
    with pytest.raises(ValueError, match='trials'):
        sysu_galleries(ds, 'all', 1, 'seeded', trials=11)
    with pytest.raises(ValueError, match='mode'):
        sysu_galleries(ds, 'outdoor', 1, 'seeded')
    with pytest.raises(ValueError, match='shots'):
        sysu_galleries(ds, 'all', 5, 'seeded')
    assert [sysu_setting(m, s) for m in ('all', 'indoor') for s in (1, 10)] == [
        'all-single',
        'all-multi',
        'indoor-single',
        'indoor-multi',
    ]


def test_regdb_directions(regdb_root: Path) -> None:
    ds = RegDB(regdb_root)
    q, g = regdb_query_gallery(ds, 2, 'v2t')
    assert q == ds.test_visible(2) and g == ds.test_thermal(2)
    assert {r.modality for r in q} == {Modality.VISIBLE} and {r.modality for r in g} == {
        Modality.INFRARED
    }
    q2, g2 = regdb_query_gallery(ds, 2, 't2v')
    assert q2 == g and g2 == q
    with pytest.raises(ValueError, match='direction'):
        regdb_query_gallery(ds, 2, 'x2y')


def test_galleries_are_indices_not_copies(sysu_root: Path) -> None:
    ds = SYSUMM01(sysu_root)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        for sampler in ('official', 'seeded'):
            for g in sysu_galleries(ds, 'indoor', 1, sampler, trials=3):
                assert (
                    g.dtype == np.int64 and g.min() >= 0 and g.max() < len(ds.gallery_candidates())
                )
                assert {ds.gallery_candidates()[i].cam for i in g} <= {1, 2}
