"""Real-size stand-ins (``vireid data synth --size full``): the release's structure and counts, read
by the real readers and samplers; deterministic whatever the number of processes.

The full SYSU-MM01 (45,863 images) is checked through its plan, which decides every file without
rendering one; the rendered checks use ``scale`` < 1 (fewer ids, each with its real counts).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

import harness.cli
from protocols import counts
from protocols.datasets.regdb import RegDB
from protocols.datasets.synthetic import MARKER, full, generate, regdb, sysu
from protocols.datasets.sysu import SYSUMM01
from protocols.trials import load_rand_perm, official_gallery, seeded_gallery

VISIBLE, INFRARED = (1, 2, 4, 5), (3, 6)
SCALE = 0.04  # 21 of the release's 513 ids with images: a few seconds to render


def _tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob('*'))
        if p.is_file()
    }


def _cli(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> int:
    monkeypatch.setattr(harness.cli, 'SUBCOMMANDS', ('data',))
    try:
        return harness.cli.main(argv)
    except SystemExit as exit_:  # argparse usage errors (a number out of its range)
        return exit_.code


@pytest.fixture(scope='module')
def small_sysu(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp('full') / 'SYSU-MM01'
    return generate('sysu', root, size='full', scale=SCALE, seed=0, workers=2)


# ------------------------------------------------------------------------- the release, as counted


def test_counts_table_gives_the_release_facts() -> None:
    """The per-(camera, id) table against the release's published and derived totals."""
    per_cam = {
        cam: [(pid, n) for pid, n in enumerate(cells, start=1) if n]
        for cam, cells in counts.SYSU_IMAGES_PER_ID.items()
    }
    assert {c: len(v) for c, v in per_cam.items()} == {
        1: 259, 2: 259, 3: 486, 4: 493, 5: 502, 6: 299
    }  # fmt: skip
    images = {c: sum(n for _, n in v) for c, v in per_cam.items()}
    assert images == {1: 6289, 2: 7528, 3: 9812, 4: 8030, 5: 8224, 6: 5980}
    assert sum(images[c] for c in VISIBLE) == 30_071  # the official README's totals
    assert sum(images[c] for c in INFRARED) == 15_792
    test = set(counts.SYSU_TEST_IDS)
    for cam in range(1, 7):
        assert sum(counts.sysu_images(cam, p) for p in test) == counts.SYSU_TEST_IMAGES[cam]
        missing = tuple(p for p in sorted(test) if not counts.sysu_images(cam, p))
        assert missing == counts.SYSU_TEST_IDS_MISSING[cam]
        if cam in VISIBLE:  # every test (camera, id) of the gallery has a 10-shot draw
            present = [counts.sysu_images(cam, p) for p in test if counts.sysu_images(cam, p)]
            assert min(present) >= counts.SYSU_MIN_GALLERY_IMAGES
    train = set(counts.SYSU_TRAIN_IDS) | set(counts.SYSU_VAL_IDS)
    assert len(train) == counts.SYSU_TRAIN.ids == 395
    assert sum(counts.sysu_images(c, p) for c in VISIBLE for p in train) == 22_258
    assert sum(counts.sysu_images(c, p) for c in INFRARED for p in train) == 11_909
    lists = [set(counts.SYSU_TRAIN_IDS), set(counts.SYSU_VAL_IDS), test]
    assert [len(s) for s in lists] == [296, 99, 96]
    assert set.union(*lists) == set(counts.SYSU_AVAILABLE_IDS) and len(counts.SYSU_AVAILABLE_IDS)
    assert sum(len(s) for s in lists) == 491
    assert counts.SYSU_VAL_IDS == tuple(p for p in range(334, 434) if p != 347)
    assert counts.sysu_images(1, 400) == 0 and counts.sysu_images(3, 999) == 0


def test_full_plan_is_the_release() -> None:
    plan = full.sysu_plan(1.0)
    expected = {
        (cam, pid): n
        for cam, cells in counts.SYSU_IMAGES_PER_ID.items()
        for pid, n in enumerate(cells, start=1)
        if n
    }
    assert plan.counts == expected and sum(plan.counts.values()) == 45_863
    assert plan.train == counts.SYSU_TRAIN_IDS
    assert plan.val == counts.SYSU_VAL_IDS and plan.test == counts.SYSU_TEST_IDS
    stats = sysu.stats(plan)
    assert stats['cameras']['cam6'] == {
        'modality': 'infrared', 'ids': 299, 'images': 5980, 'test_ids': 96, 'test_images': 1920
    }  # fmt: skip
    perm = sysu.rand_perm_cam(plan, seed=0)
    assert perm.shape == (6, 1)
    for cam in range(1, 7):
        cells = perm[cam - 1, 0]
        assert cells.shape == ((333, 1) if cam in (1, 2, 6) else (533, 1))
        for pid, cell in enumerate(cells[:, 0], start=1):
            n = counts.sysu_images(cam, pid)
            assert cell.dtype == np.uint8 and cell.shape == (10, n)
            if n:
                assert (np.sort(cell, axis=1) == np.arange(1, n + 1)).all()


def test_scaled_plan_keeps_every_kind_of_id_with_real_counts() -> None:
    plan = full.sysu_plan(SCALE)
    for kept, everyone in (
        (plan.train, counts.SYSU_TRAIN_IDS),
        (plan.val, counts.SYSU_VAL_IDS),
        (plan.test, counts.SYSU_TEST_IDS),
    ):
        assert kept and set(kept) <= set(everyone)
        assert abs(len(kept) - SCALE * len(everyone)) <= 2
    indoor = [p for p in plan.test if counts.sysu_images(1, p)]
    assert indoor and len(indoor) < len(plan.test)  # indoor search keeps fewer ids
    pids = {pid for _, pid in plan.counts}
    assert pids - set(plan.available), 'ids in no list (one modality only) are kept too'
    assert all(n == counts.sysu_images(cam, pid) for (cam, pid), n in plan.counts.items())
    assert all(
        counts.sysu_images(cam, pid) == plan.counts.get((cam, pid), 0)
        for pid in pids
        for cam in range(1, 7)
    )
    with pytest.raises(ValueError, match='scale must be a number in'):
        full.sysu_plan(0)
    with pytest.raises(ValueError, match='scale must be a number in'):
        full.sysu_plan(1.5)


# --------------------------------------------------------------------------- read by the readers


def test_scaled_sysu_stand_in_on_disk(small_sysu: Path) -> None:
    plan = full.sysu_plan(SCALE)
    ds = SYSUMM01(small_sysu)
    assert (ds.train_ids, ds.val_ids, ds.test_ids) == (plan.train, plan.val, plan.test)
    on_disk: dict[tuple[int, int], list[str]] = {}
    for rec in ds.records:
        on_disk.setdefault((rec.cam, rec.pid), []).append(rec.path.rsplit('/', 1)[1])
    assert {k: len(v) for k, v in on_disk.items()} == plan.counts
    for (cam, pid), names in on_disk.items():
        assert names == [f'{k:04d}.jpg' for k in range(1, len(names) + 1)]
        with Image.open(small_sysu / f'cam{cam}' / f'{pid:04d}' / names[-1]) as im:
            assert im.format == 'JPEG' and im.mode == 'RGB'
            assert im.size[::-1] == full.crop_size(0, cam, pid)
            arr = np.asarray(im, np.int16)
        spread = np.abs(arr - arr.mean(axis=2, keepdims=True)).max()
        assert spread <= 8 if cam in INFRARED else spread > 30, (cam, pid, spread)
    h, w = full.crop_size(0, 1, plan.test[0])
    assert 336 <= h <= 432 and abs(w / h - 160 / 384) < 0.03
    for name, ids in (('train', plan.train), ('val', plan.val), ('test', plan.test)):
        exp = small_sysu / 'exp'
        assert (exp / f'{name}_id.txt').read_text() == ','.join(map(str, ids))
        twin = scipy.io.loadmat(exp / f'{name}_id.mat')['id']
        assert twin.dtype == np.uint16 and twin.shape == (1, len(ids))  # like the official .mat
        assert twin.ravel().tolist() == list(ids)
    marker = json.loads((small_sysu / MARKER).read_text())
    assert marker['size'] == 'full' and marker['scale'] == SCALE and 'ids' not in marker


def test_official_and_seeded_samplers_on_the_stand_in(small_sysu: Path) -> None:
    ds = SYSUMM01(small_sysu)
    perm = load_rand_perm(ds.rand_perm_path)
    candidates = ds.gallery_candidates()
    for mode, cams in (('all', VISIBLE), ('indoor', (1, 2))):
        cells = [(c, p) for c in cams for p in ds.test_ids if counts.sysu_images(c, p)]
        for shots in (1, 10):
            for trial in range(10):
                chosen = official_gallery(ds, perm, mode, shots, trial)
                assert len(chosen) == shots * len(cells)
                assert {(candidates[i].cam, candidates[i].pid) for i in chosen} == set(cells)
            assert len(seeded_gallery(ds, mode, shots, 0)) == shots * len(cells)


def test_data_check_passes_on_the_stand_ins(
    small_sysu: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    assert _cli(monkeypatch, ['data', 'check', '--dataset', 'sysu', '--root', str(small_sysu)]) == 0
    out = capsys.readouterr().out
    assert 'official gallery (trial 0)' in out and '\nOK: ' in out
    regdb_root = generate('regdb', tmp_path / 'RegDB', size='full', scale=0.05, workers=2)
    assert (
        _cli(monkeypatch, ['data', 'check', '--dataset', 'regdb', '--root', str(regdb_root)]) == 0
    )
    assert '\nOK: ' in capsys.readouterr().out


def test_regdb_stand_in_structure(tmp_path: Path) -> None:
    assert full.regdb_ids(1.0) == counts.REGDB_IDS == 412
    for t in range(1, 11):  # the full stand-in's splits, without rendering its images
        train, test = regdb.split(412, 0, t)
        assert len(train) == len(test) == 206 and sorted(train + test) == list(range(1, 413))
    root = generate('regdb', tmp_path / 'RegDB', size='full', scale=0.05, seed=0, workers=2)
    ds = RegDB(root)
    n = full.regdb_ids(0.05)
    assert n == 21 and len(ds.records) == 2 * 10 * n
    for t in range(1, 11):
        train, test = ds.train_set(t), ds.test_visible(t)
        assert train.num_classes == n // 2 and len(train.records) == 2 * 10 * (n // 2)
        assert len(test) == 10 * (n - n // 2) and len(ds.test_thermal(t)) == len(test)
    for rec in ds.records[:: len(ds.records) // 7]:
        with Image.open(root / rec.path) as im:
            assert im.format == 'BMP' and im.size == (64, 128)


# ------------------------------------------------------------------- determinism and arguments


def test_same_bytes_whatever_the_number_of_processes(tmp_path: Path) -> None:
    a = _tree(generate('sysu', tmp_path / 'a', size='full', scale=0.01, seed=5, workers=1))
    b = _tree(generate('sysu', tmp_path / 'b', size='full', scale=0.01, seed=5, workers=3))
    assert len(a) > 300 and a == b
    c = _tree(generate('sysu', tmp_path / 'c', size='full', scale=0.01, seed=6, workers=2))
    images = [k for k in a if k.endswith('.jpg')]
    assert sorted(k for k in c if k.endswith('.jpg')) == images  # same structure
    assert sum(a[k] != c[k] for k in images) == len(images)  # other pixels everywhere


def test_markers_sizes_and_argument_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root = generate('regdb', tmp_path / 'r', size='full', scale=0.01)
    stamp = (root / MARKER).stat().st_mtime_ns
    assert generate('regdb', root, size='full', scale=0.01) == root
    assert (root / MARKER).stat().st_mtime_ns == stamp  # same arguments: nothing written
    generate('regdb', root, ids=4)  # the demo size replaces it
    assert json.loads((root / MARKER).read_text())['ids'] == 4
    with pytest.raises(ValueError, match='ids applies to the demo size'):
        generate('sysu', tmp_path / 's', size='full', ids=10)
    with pytest.raises(ValueError, match='scale applies to size="full"'):
        generate('sysu', tmp_path / 's', scale=0.5)
    with pytest.raises(ValueError, match='size must be one of'):
        generate('sysu', tmp_path / 's', size='huge')
    out = str(tmp_path / 'cli')
    for argv, message in (
        (['--size', 'full', '--ids', '10'], '--ids applies to --size demo'),
        (['--scale', '0.5'], '--scale applies to --size full'),
        (['--size', 'full', '--scale', '0'], '--scale: must be in (0, 1], got 0'),
        (['--size', 'full', '--workers', '0'], '--workers: must be at least 1, got 0'),
    ):
        argv = ['data', 'synth', '--dataset', 'regdb', '--out', out, *argv]
        assert _cli(monkeypatch, argv) == 2
        assert message in capsys.readouterr().err
    assert not Path(out).exists()
    argv = [
        'data',
        'synth',
        '--dataset',
        'regdb',
        '--out',
        out,
        '--size',
        'full',
        '--scale',
        '0.01',
    ]
    assert _cli(monkeypatch, argv) == 0
    said = capsys.readouterr().out
    assert 'wrote synthetic regdb (full)' in said and 'worker process' in said
    assert _cli(monkeypatch, argv) == 0
    assert 'already holds this synthetic regdb dataset' in capsys.readouterr().out
