"""Synthetic SYSU-MM01 / RegDB: real on-disk layouts, determinism, modality gap, learnability,
safety."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from protocols.datasets.base import DatasetLayoutError
from protocols.datasets.synthetic import (
    DEFAULT_GAP,
    DEFAULT_IDS,
    MARKER,
    generate,
    regdb,
    render,
    sysu,
)
from protocols.datasets.synthetic.seeding import stream

VISIBLE_CAMS, IR_CAMS = (1, 2, 4, 5), (3, 6)


def _ids(path: Path) -> list[int]:
    lines = path.read_text().splitlines()
    assert len(lines) == 1, f'{path} must hold one line'
    return [int(tok) for tok in lines[0].split(',')]


def _tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob('*'))
        if p.is_file()
    }


def _folders(root: Path, cam: int) -> dict[int, list[str]]:
    out = {}
    for d in sorted((root / f'cam{cam}').iterdir()):
        assert re.fullmatch(r'\d{4}', d.name), d
        out[int(d.name)] = sorted(f.name for f in d.iterdir())
    return out


def _grey(path: Path, size=(8, 16)) -> np.ndarray:
    img = Image.open(path).convert('L').resize(size, Image.BILINEAR)
    x = np.asarray(img, np.float64).ravel()
    return (x - x.mean()) / (x.std() + 1e-6)


# -------------------------------------------------------------------------------------- SYSU layout


def test_sysu_layout_and_files(sysu_root: Path) -> None:
    assert {p.name for p in sysu_root.iterdir()} == {f'cam{c}' for c in range(1, 7)} | {
        'exp',
        MARKER,
    }
    sizes = set()
    for cam in range(1, 7):
        for pid, names in _folders(sysu_root, cam).items():
            assert names == [f'{k:04d}.jpg' for k in range(1, len(names) + 1)], (cam, pid)
            with Image.open(sysu_root / f'cam{cam}' / f'{pid:04d}' / names[0]) as im:
                assert im.format == 'JPEG' and im.mode == 'RGB'
                arr = np.asarray(im, np.int16)
                sizes.add(im.size)
            spread = np.abs(arr - arr.mean(axis=2, keepdims=True)).max()
            if cam in IR_CAMS:  # 3-channel grey
                assert spread <= 8, (cam, pid, spread)
            else:
                assert spread > 30, (cam, pid, spread)
            assert 100 <= arr.shape[0] <= 160 and 50 <= arr.shape[1] <= 80
    assert len(sizes) > 1  # cameras differ in image size


def test_sysu_id_files_and_presence_rules(sysu_root: Path) -> None:
    exp = sysu_root / 'exp'
    train, val, test, avail = (
        _ids(exp / f'{s}_id.txt') for s in ('train', 'val', 'test', 'available')
    )
    for ids in (train, val, test, avail):
        assert ids == sorted(set(ids))
    assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))
    assert set(avail) == set(train) | set(val) | set(test)
    n = len(avail)
    assert 0.45 < len(train) / n < 0.75 and 0.1 < len(val) / n < 0.3 and 0.1 < len(test) / n < 0.3
    for name, ids in (('train_id', train), ('test_id', test)):
        assert scipy.io.loadmat(exp / f'{name}.mat')['id'].ravel().astype(int).tolist() == ids

    folders = {cam: _folders(sysu_root, cam) for cam in range(1, 7)}
    has = {cam: set(f) for cam, f in folders.items()}
    vis = set().union(*(has[c] for c in VISIBLE_CAMS))
    ir = has[3] | has[6]
    assert set(avail) <= vis & ir  # available = seen in both modalities
    all_ids = vis | ir
    assert all_ids - set(avail), 'expected some unusable ids (one modality only), as in the release'
    assert has[1] == has[2]
    indoor_test = has[1] & set(test)
    assert 0 < len(indoor_test) < len(test)  # indoor search has fewer ids
    assert set(test) <= has[4] | has[5]
    for cam in VISIBLE_CAMS:
        for pid in has[cam] & set(test):
            assert len(folders[cam][pid]) >= 10, (cam, pid)  # 10-shot galleries
    assert all(set(avail) - has[c] for c in (1, 2, 6))  # like the release: these never see ids > A


def test_sysu_rand_perm_cam_real_structure(sysu_root: Path) -> None:
    p = scipy.io.loadmat(sysu_root / 'exp' / 'rand_perm_cam.mat')['rand_perm_cam']
    assert p.dtype == object and p.shape == (6, 1)
    marker = json.loads((sysu_root / MARKER).read_text())
    cells_per_cam = []
    for cam in range(1, 7):
        cells = p[cam - 1][0]
        assert cells.dtype == object and cells.ndim == 2 and cells.shape[1] == 1
        folders = _folders(sysu_root, cam)
        assert max(folders) <= cells.shape[0]
        cells_per_cam.append(cells.shape[0])
        flat = cells.squeeze()
        for pid in range(1, cells.shape[0] + 1):
            m = flat[pid - 1]
            n = len(folders.get(pid, []))
            assert m.dtype == np.uint8 and m.shape == (10, n), (cam, pid, m.shape)
            for t in range(10):
                assert sorted(m[t].tolist()) == list(range(1, n + 1))
            if n > 2:
                assert len({tuple(row) for row in m.tolist()}) > 1  # rows are different draws
    assert (
        cells_per_cam[0] == cells_per_cam[1] == cells_per_cam[5] < cells_per_cam[2] == marker['ids']
    )

    # MPANet's exact access pattern builds names of files that exist.
    test = _ids(sysu_root / 'exp' / 'test_id.txt')
    for cam in VISIBLE_CAMS:
        cam_perm = p[cam - 1][0].squeeze()
        for pid in test:
            if pid > len(cam_perm):
                continue
            for t in range(10):
                for k in cam_perm[pid - 1][t][:10]:
                    assert (sysu_root / f'cam{cam}' / f'{pid:04d}' / f'{k:04d}.jpg').is_file()


# ------------------------------------------------------------------------------------- RegDB layout


def test_regdb_layout(regdb_root: Path) -> None:
    assert {p.name for p in regdb_root.iterdir()} == {'Visible', 'Thermal', 'idx', MARKER}
    n = json.loads((regdb_root / MARKER).read_text())['ids']
    for folder, tag in (('Visible', 'v'), ('Thermal', 't')):
        dirs = sorted(int(d.name) for d in (regdb_root / folder).iterdir())
        assert dirs == list(range(1, n + 1))
        for pid in dirs:
            names = sorted(f.name for f in (regdb_root / folder / str(pid)).iterdir())
            assert len(names) == 10
            for name in names:
                assert re.fullmatch(
                    rf'(male|female)_(front|back)_{tag}_\d{{5}}_{pid}\.bmp', name
                ), name
    v_names = sorted(p.name.replace('_v_', '_x_') for p in (regdb_root / 'Visible').rglob('*.bmp'))
    t_names = sorted(p.name.replace('_t_', '_x_') for p in (regdb_root / 'Thermal').rglob('*.bmp'))
    assert v_names == t_names  # simultaneous pairs
    with Image.open(next((regdb_root / 'Thermal' / '1').iterdir())) as im:
        assert im.format == 'BMP' and im.mode == 'RGB'
        arr = np.asarray(im, np.int16)
        assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()


def test_regdb_idx_files(regdb_root: Path) -> None:
    n = json.loads((regdb_root / MARKER).read_text())['ids']
    idx = regdb_root / 'idx'
    assert len(list(idx.iterdir())) == 40
    splits = []
    for t in range(1, 11):
        ids_of = {}
        for part in ('train', 'test'):
            labels_by_mod = []
            for mod, folder in (('visible', 'Visible'), ('thermal', 'Thermal')):
                label_of: dict[int, int] = {}
                count: dict[int, int] = {}
                for line in (idx / f'{part}_{mod}_{t}.txt').read_text().splitlines():
                    path, label = line.split(' ')
                    assert path.startswith(folder + '/') and (regdb_root / path).is_file()
                    pid = int(path.split('/')[-2])
                    assert label_of.setdefault(pid, int(label)) == int(label)
                    count[pid] = count.get(pid, 0) + 1
                assert set(count.values()) == {10}
                labels = sorted(label_of.values())
                assert labels == list(range(len(label_of)))  # one label per id, no gaps
                labels_by_mod.append(label_of)
            assert labels_by_mod[0] == labels_by_mod[1]  # same labels in both modalities
            ids_of[part] = set(labels_by_mod[0])
        assert not ids_of['train'] & ids_of['test']
        assert ids_of['train'] | ids_of['test'] == set(range(1, n + 1))
        assert len(ids_of['train']) == n // 2
        splits.append(frozenset(ids_of['train']))
    assert len(set(splits)) > 5  # random split per trial


# ------------------------------------------------------------------------------------- determinism


def test_sysu_bytes_identical_for_seed_and_worker_count(tmp_path: Path) -> None:
    a = generate('sysu', tmp_path / 'a', ids=10, seed=3, workers=1)
    b = generate('sysu', tmp_path / 'b', ids=10, seed=3, workers=2)
    ta, tb = _tree(a), _tree(b)
    assert len(ta) > 100 and ta == tb


def test_regdb_bytes_identical_for_seed_and_gap(tmp_path: Path) -> None:
    a = _tree(generate('regdb', tmp_path / 'a', ids=3, seed=1, gap=0.3, workers=2))
    b = _tree(generate('regdb', tmp_path / 'b', ids=3, seed=1, gap=0.3, workers=1))
    c = _tree(generate('regdb', tmp_path / 'c', ids=3, seed=1, gap=0.7))
    assert a == b
    # another gap: the same visible images (people, poses, noise), other thermal ones
    differ = {k for k in a if a[k] != c[k]}
    assert differ and all(k.startswith('Thermal/') for k in differ if k != MARKER)


def test_different_seed_differs(tmp_path: Path) -> None:
    a = _tree(generate('regdb', tmp_path / 'a', ids=2, seed=0))
    b = _tree(generate('regdb', tmp_path / 'b', ids=2, seed=1))
    assert a.keys() != b.keys() or a != b
    assert sum(a[k] != b.get(k) for k in a) > len(a) // 2
    pa, pb = sysu.plan(30, 0), sysu.plan(30, 1)
    assert (pa.test, pa.counts) != (pb.test, pb.counts)
    person = render.sample_person(stream(0, 1, 0, 5))
    assert not np.array_equal(
        sysu.render_image(0, person, 4, 5, 1), sysu.render_image(1, person, 4, 5, 1)
    )
    assert np.array_equal(
        sysu.render_image(0, person, 4, 5, 1), sysu.render_image(0, person, 4, 5, 1)
    )


# ----------------------------------------------------------------------------------- modality gap


def _upper_tones(gap: float, n: int = 60) -> tuple[list[float], list[float], list[float]]:
    """Grey level of each person's visible upper garment, its infrared level, and the infrared
    contrast of its texture (patterned garments only), at a given gap."""
    cam_v, cam_ir = sysu.CAMERAS[1], sysu.CAMERAS[3]
    pose = render.Pose(
        view='front', facing=1, phase=0.0, stride=0.0, swing=0.0, dx=0.0, dy=0.0, scale=1.0
    )
    lum, nir, tone_gap = [], [], []
    for pid in range(1, n + 1):
        person = render.sample_person(stream(7, 1, 0, pid), gap)
        lab, tone, _ = render.person_labels(person, pose, cam_v)
        vis = render.render(
            person, pose, cam_v, 'visible', np.random.default_rng(pid), labels=(lab, tone, _)
        )
        lab3, tone3, u3 = render.person_labels(person, pose, cam_ir)
        ir = render.render(
            person, pose, cam_ir, 'nir', np.random.default_rng(pid), labels=(lab3, tone3, u3)
        )
        reg_v = (lab == render.UPPER) & (tone == 0)
        reg_i = (lab3 == render.UPPER) & (tone3 == 0)
        assert reg_v.sum() > 30 and reg_i.sum() > 30
        grey = vis.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        lum.append(grey[reg_v].mean())
        nir.append(ir[..., 0][reg_i].mean())
        if (tone3[lab3 == render.UPPER] == 1).sum() > 30:
            tone_gap.append(abs(ir[..., 0][(lab3 == render.UPPER) & (tone3 == 1)].mean() - nir[-1]))
    return lum, nir, tone_gap


def test_gap_knob_moves_infrared_from_grey_level_to_independent() -> None:
    r = {gap: np.corrcoef(*_upper_tones(gap)[:2])[0, 1] for gap in (0.0, DEFAULT_GAP, 1.0)}
    # gap 0: infrared is the grey level of the colour (up to camera gain, gamma and noise)
    assert r[0.0] > 0.9, r
    # gap 1: independent of colour, as version 1 of the generator drew it
    assert abs(r[1.0]) < 0.45, r
    assert r[0.0] > r[DEFAULT_GAP] > r[1.0], r
    # ...while texture (the two tones of a patterned garment) stays visible in infrared.
    tone_gap = _upper_tones(1.0)[2]
    assert len(tone_gap) > 10 and np.median(tone_gap) > 25


def test_gap_changes_only_infrared_tones() -> None:
    a = render.sample_person(stream(0, 1, 0, 9), 0.0)
    b = render.sample_person(stream(0, 1, 0, 9), 1.0)
    assert np.array_equal(a.rgb, b.rgb) and a.pattern == b.pattern and a.bag == b.bag
    assert not np.allclose(a.nir, b.nir)
    assert np.allclose(a.nir[1:], a.rgb[1:] @ render.LUMA, atol=1e-6)  # gap 0: grey level exactly
    assert a.nir[render.BACKGROUND].max() == 0.0 == b.thermal[render.BACKGROUND].max()
    for bad in (-0.1, 1.5, '0.5', True):
        with pytest.raises(ValueError, match='gap must be a number in'):
            render.sample_person(stream(0, 1, 0, 9), bad)


def test_default_sizes_give_at_least_40_test_identities() -> None:
    # Rank-20 must not be 100 by construction: at least 40 gallery ids on both datasets.
    p = sysu.plan(DEFAULT_IDS['sysu'], 0, DEFAULT_GAP)
    assert len(p.test) >= 40
    assert len(p.train) + len(p.val) >= 150  # enough training ids that memorising them does not pay
    for trial in range(1, 11):
        train, test = regdb.split(DEFAULT_IDS['regdb'], 0, trial)
        assert len(test) >= 40 and len(train) >= 40


# ----------------------------------------------------------------------------------- learnability


def test_identity_learnable_from_infrared_pixels(sysu_root: Path) -> None:
    paths = sorted(sysu_root.glob('cam[36]/*/*.jpg'))
    pids = np.array([int(p.parent.name) for p in paths])
    x = np.stack([_grey(p) for p in paths])
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    acc = (pids[d.argmin(1)] == pids).mean()
    # chance of a 1-NN hit: the probability that a random other image has the same id
    _, counts = np.unique(pids, return_counts=True)
    chance = ((counts * (counts - 1)).sum()) / (len(pids) * (len(pids) - 1))
    assert acc > max(0.3, 5 * chance), (acc, chance)


# ----------------------------------------------------------------------------- directory handling


def test_idempotent_refusals_and_replacement(tmp_path: Path) -> None:
    out = tmp_path / 'RegDB'
    root = generate('regdb', out, ids=2, seed=0)
    assert root == out
    marker = json.loads((out / MARKER).read_text())
    assert (marker['kind'], marker['ids'], marker['seed'], marker['gap']) == (
        'regdb',
        2,
        0,
        DEFAULT_GAP,
    )
    assert marker['version'] == 2
    before = {p: p.stat().st_mtime_ns for p in out.rglob('*')}
    assert generate('regdb', out, ids=2, seed=0) == out
    assert {p: p.stat().st_mtime_ns for p in out.rglob('*')} == before  # nothing rewritten
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]  # no staging left behind

    generate('regdb', out, ids=3, seed=0)  # same kind, other parameters: replaced
    assert json.loads((out / MARKER).read_text())['ids'] == 3
    assert len(list((out / 'Visible').iterdir())) == 3
    generate('regdb', out, ids=3, seed=0, gap=0.0)  # another gap is another dataset
    assert json.loads((out / MARKER).read_text())['gap'] == 0.0

    with pytest.raises(DatasetLayoutError, match="not 'sysu'"):
        generate('sysu', out, ids=10)

    (out / 'notes.txt').write_text('mine')
    with pytest.raises(DatasetLayoutError, match='notes.txt'):
        generate('regdb', out, ids=2, seed=5)
    assert (out / 'notes.txt').is_file()

    interrupted = tmp_path / 'partial'
    (interrupted / 'cam1' / '0001').mkdir(parents=True)  # e.g. a copy or run cut short: no marker
    with pytest.raises(DatasetLayoutError, match=r'no \.synthetic\.json.*rm -r'):
        generate('sysu', interrupted, ids=10)

    empty = tmp_path / 'empty'
    empty.mkdir()
    assert (generate('regdb', empty, ids=2) / MARKER).is_file()


def test_argument_errors(tmp_path: Path) -> None:
    assert set(DEFAULT_IDS) == {'sysu', 'regdb', 'llcm'}
    with pytest.raises(ValueError, match='dataset must be one of'):
        generate('market', tmp_path / 'x')
    with pytest.raises(ValueError, match='ids must be'):
        generate('sysu', tmp_path / 'x', ids=3)
    with pytest.raises(ValueError, match='seed must be'):
        generate('regdb', tmp_path / 'x', seed=-1)
    with pytest.raises(ValueError, match=r'gap must be a number in \[0, 1\]'):
        generate('regdb', tmp_path / 'x', gap=2.0)
    assert not (tmp_path / 'x').exists()


def test_regdb_pairs_share_pose() -> None:
    vis, th = regdb.render_pair(0, 4, 1)
    other_vis, _ = regdb.render_pair(0, 4, 2)
    assert vis.shape == th.shape == (128, 64, 3)
    # foreground silhouettes of the simultaneous pair overlap far more than those of another instant
    person = render.sample_person(stream(0, 2, 0, 4))
    pose1 = regdb._pose(0, 4, 1)
    pose2 = regdb._pose(0, 4, 2)
    body_v = render.person_labels(person, pose1, regdb.VISIBLE)[0] > 0
    body_t = render.person_labels(person, pose1, regdb.THERMAL)[0] > 0
    body_o = render.person_labels(person, pose2, regdb.VISIBLE)[0] > 0
    iou = lambda a, b: (a & b).sum() / (a | b).sum()  # noqa: E731
    assert iou(body_v, body_t) > iou(body_v, body_o) and iou(body_v, body_t) > 0.6
    assert not np.array_equal(vis, other_vis)
