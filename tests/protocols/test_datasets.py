"""Dataset readers (SYSU-MM01, RegDB): indexing, splits, relabelling, validation, images,
``vireid data check``."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import harness.cli
from protocols.datasets import TrainSet, load_dataset, relabel
from protocols.datasets.base import DatasetLayoutError, ImageRecord, Modality
from protocols.datasets.images import load_image, verify_images
from protocols.datasets.regdb import RegDB
from protocols.datasets.sysu import SYSUMM01


def _ids(path: Path) -> list[int]:
    return [int(t) for t in path.read_text().split('\n')[0].split(',') if t.strip()]


def _files(root: Path, pattern: str) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.glob(pattern)}


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # keeps the header, loses most of the scan data


def _cli(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> int:
    monkeypatch.setattr(harness.cli, 'SUBCOMMANDS', ('data', 'score'))
    return harness.cli.main(argv)


# --------------------------------------------------------------------------------------------------
# SYSU-MM01


def test_sysu_index_matches_files(sysu_root: Path) -> None:
    ds = SYSUMM01(sysu_root)
    on_disk = _files(sysu_root, 'cam*/*/*.jpg')
    assert {r.path for r in ds.records} == on_disk
    assert len(ds.records) == len(on_disk)
    for rec in ds.records:
        cam_dir, pid_dir, _ = rec.path.split('/')
        assert cam_dir == f'cam{rec.cam}' and int(pid_dir) == rec.pid
        assert rec.modality == (Modality.INFRARED if rec.cam in (3, 6) else Modality.VISIBLE)
    per_cam = Counter(r.cam for r in ds.records)
    for cam in range(1, 7):
        assert per_cam[cam] == len(list((sysu_root / f'cam{cam}').glob('*/*.jpg')))


def test_sysu_splits_and_train_relabel(sysu_root: Path) -> None:
    ds = SYSUMM01(sysu_root)
    train, val, test = (_ids(sysu_root / 'exp' / f'{s}_id.txt') for s in ('train', 'val', 'test'))
    assert list(ds.train_ids) == train and list(ds.val_ids) == val and list(ds.test_ids) == test
    ts = ds.train_set()
    ids = sorted(set(train) | set(val))
    assert {r.pid for r in ts.records} == set(ids)
    assert ts.num_classes == len(ids)
    assert ts.label_of == {pid: i for i, pid in enumerate(ids)}
    assert sorted(set(ts.labels)) == list(range(len(ids)))
    assert all(ts.labels[i] == ids.index(r.pid) for i, r in enumerate(ts.records))
    expected = {p for p in _files(sysu_root, 'cam*/*/*.jpg') if int(p.split('/')[1]) in set(ids)}
    assert {r.path for r in ts.records} == expected
    assert ts.by_modality(Modality.INFRARED) and ts.by_modality(Modality.VISIBLE)


def test_sysu_query_and_candidates(sysu_root: Path) -> None:
    ds = SYSUMM01(sysu_root)
    test = set(_ids(sysu_root / 'exp' / 'test_id.txt'))
    ir = {p for p in _files(sysu_root, 'cam[36]/*/*.jpg') if int(p.split('/')[1]) in test}
    vis = {p for p in _files(sysu_root, 'cam[1245]/*/*.jpg') if int(p.split('/')[1]) in test}
    query, cand = ds.query_records(), ds.gallery_candidates()
    assert [r.path for r in query] != [] and {r.path for r in query} == ir and len(query) == len(ir)
    assert {r.path for r in cand} == vis and len(cand) == len(vis)
    # AGW's query order: id-major, then cam3 before cam6, then file name.
    assert [(r.pid, r.cam, r.path) for r in query] == sorted((r.pid, r.cam, r.path) for r in query)
    assert ds.query_records() == query  # deterministic


def test_relabel_sorted_explicitly() -> None:
    assert relabel([30, 4, 4, 17]) == {4: 0, 17: 1, 30: 2}
    recs = [ImageRecord('a', 9, 1, Modality.VISIBLE), ImageRecord('b', 2, 3, Modality.INFRARED)]
    assert TrainSet.from_records(recs).labels == [1, 0]


def test_fingerprint_tracks_files_and_splits(sysu_copy: Path) -> None:
    first = SYSUMM01(sysu_copy).fingerprint()
    assert first == SYSUMM01(sysu_copy).fingerprint() and len(first) == 40
    val = sysu_copy / 'exp' / 'val_id.txt'
    val.write_text(val.read_text() + '\n\n')  # same ids, different bytes
    second = SYSUMM01(sysu_copy).fingerprint()
    assert second != first
    victim = next(p for p in sorted(sysu_copy.glob('cam1/*/*.jpg')))
    victim.unlink()
    assert SYSUMM01(sysu_copy).fingerprint() != second


def test_load_dataset_factory(sysu_root: Path, regdb_root: Path) -> None:
    assert isinstance(load_dataset('sysu', sysu_root), SYSUMM01)
    assert isinstance(load_dataset('regdb', regdb_root), RegDB)
    with pytest.raises(ValueError, match='unknown dataset'):
        load_dataset('market', sysu_root)
    with pytest.raises(DatasetLayoutError, match='does not exist'):
        load_dataset('sysu', sysu_root / 'nope')
    with pytest.raises(DatasetLayoutError, match='missing camera folder'):
        load_dataset('sysu', regdb_root)  # wrong dataset for the root


def test_sysu_missing_camera_folder(sysu_copy: Path) -> None:
    shutil.rmtree(sysu_copy / 'cam4')
    with pytest.raises(DatasetLayoutError, match='cam4') as err:
        SYSUMM01(sysu_copy)
    assert str(sysu_copy) in str(err.value) and 'fix' in str(err.value)


def test_sysu_missing_split_file(sysu_copy: Path) -> None:
    (sysu_copy / 'exp' / 'test_id.txt').unlink()
    with pytest.raises(DatasetLayoutError, match=r'missing split file .*test_id\.txt'):
        SYSUMM01(sysu_copy)


def test_sysu_empty_split_file(sysu_copy: Path) -> None:
    (sysu_copy / 'exp' / 'val_id.txt').write_text('\n\n')
    with pytest.raises(DatasetLayoutError, match=r'val_id\.txt is empty'):
        SYSUMM01(sysu_copy)


def test_sysu_malformed_split_file(sysu_copy: Path) -> None:
    (sysu_copy / 'exp' / 'val_id.txt').write_text('1,two,3\n')
    with pytest.raises(DatasetLayoutError, match="'two' is not a person id"):
        SYSUMM01(sysu_copy)


def test_sysu_split_id_without_images(sysu_copy: Path) -> None:
    test_file = sysu_copy / 'exp' / 'test_id.txt'
    test_file.write_text(test_file.read_text().strip() + ',9999\n')
    with pytest.raises(
        DatasetLayoutError, match=r'test_id\.txt lists 1 id\(s\) with no image.*9999'
    ):
        SYSUMM01(sysu_copy)


def test_sysu_overlapping_splits(sysu_copy: Path) -> None:
    test_id = _ids(sysu_copy / 'exp' / 'test_id.txt')[0]
    train = sysu_copy / 'exp' / 'train_id.txt'
    train.write_text(train.read_text().strip() + f',{test_id}\n')
    with pytest.raises(DatasetLayoutError, match='share ids'):
        SYSUMM01(sysu_copy)


def test_sysu_non_numeric_id_folder(sysu_copy: Path) -> None:
    (sysu_copy / 'cam2' / 'backup').mkdir()
    with pytest.raises(DatasetLayoutError, match=r'cam2/backup'):
        SYSUMM01(sysu_copy)


def test_sysu_stray_files_are_not_images(sysu_copy: Path) -> None:
    folder = next(p for p in sorted((sysu_copy / 'cam1').iterdir()) if p.is_dir())
    (folder / 'Thumbs.db').write_bytes(b'x')
    ds = SYSUMM01(sysu_copy)
    assert ds.stray_files == [f'cam1/{folder.name}/Thumbs.db']
    assert all(not r.path.endswith('Thumbs.db') for r in ds.records)


# --------------------------------------------------------------------------------------------------
# Images


def test_load_image_converts_to_rgb(tmp_path: Path) -> None:
    grey = np.arange(24 * 12, dtype=np.uint8).reshape(24, 12)
    Image.fromarray(grey, mode='L').save(tmp_path / 'g.jpg')
    img = load_image(tmp_path, 'g.jpg')
    assert img.mode == 'RGB' and img.size == (12, 24)
    arr = load_image(tmp_path, ImageRecord('g.jpg', 1, 3, Modality.INFRARED), as_array=True)
    assert arr.dtype == np.uint8 and arr.shape == (24, 12, 3)
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()


def test_truncated_and_missing_images_named_by_path(sysu_copy: Path) -> None:
    ds = SYSUMM01(sysu_copy)
    bad, gone = ds.records[3], ds.records[7]
    _truncate(sysu_copy / bad.path)
    with pytest.raises(DatasetLayoutError, match='cannot decode image') as err:
        load_image(sysu_copy, bad)
    assert bad.path in str(err.value)
    (sysu_copy / gone.path).unlink()
    with pytest.raises(DatasetLayoutError, match='image not found') as err:
        load_image(sysu_copy, gone)
    assert gone.path in str(err.value)
    problems = verify_images(sysu_copy, ds.records)
    assert [p.path for p in problems] == [bad.path, gone.path]
    # Headers only: the truncated file still has a valid header, the missing one does not exist.
    assert [p.path for p in verify_images(sysu_copy, ds.records, quick=True)] == [gone.path]


def test_garbage_image_fails_even_quick(tmp_path: Path) -> None:
    (tmp_path / 'x.jpg').write_bytes(b'not a jpeg at all')
    assert [p.path for p in verify_images(tmp_path, ['x.jpg'], quick=True)] == ['x.jpg']
    with pytest.raises(DatasetLayoutError, match='x.jpg'):
        load_image(tmp_path, 'x.jpg')


# --------------------------------------------------------------------------------------------------
# RegDB


def _idx_lines(root: Path, name: str) -> list[tuple[str, int]]:
    out = []
    for line in (root / 'idx' / name).read_text().splitlines():
        if line.strip():
            path, label = line.rsplit(maxsplit=1)
            out.append((path, int(label)))
    return out


def test_regdb_index_and_splits(regdb_root: Path) -> None:
    ds = RegDB(regdb_root)
    files = {
        p.relative_to(regdb_root).as_posix()
        for p in regdb_root.glob('*/*/*')
        if p.parent.parent.name in ('Visible', 'Thermal') and p.is_file()
    }
    assert {r.path for r in ds.records} == files
    for rec in ds.records:
        top, folder, _ = rec.path.split('/')
        assert int(folder) == rec.pid
        assert (rec.modality, rec.cam) == (
            (Modality.VISIBLE, 1) if top == 'Visible' else (Modality.INFRARED, 2)
        )
    for trial in (1, 10):
        for part in ('train', 'test'):
            for modality, kind in ((Modality.VISIBLE, 'visible'), (Modality.INFRARED, 'thermal')):
                lines = _idx_lines(regdb_root, f'{part}_{kind}_{trial}.txt')
                recs = ds.split_records(trial, part, modality)
                assert [(r.path, r.pid) for r in recs] == lines  # pid = the idx label column
                assert all(r.modality == modality for r in recs)
    ts = ds.train_set(1)
    labels = sorted(
        {
            lab
            for name in ('train_visible_1.txt', 'train_thermal_1.txt')
            for _, lab in _idx_lines(regdb_root, name)
        }
    )
    assert ts.label_of == {lab: i for i, lab in enumerate(labels)}
    assert len(ts.records) == len(_idx_lines(regdb_root, 'train_visible_1.txt')) + len(
        _idx_lines(regdb_root, 'train_thermal_1.txt')
    )
    train_folders = {r.path.split('/')[1] for r in ts.records}
    test_folders = {r.path.split('/')[1] for r in ds.test_visible(1) + ds.test_thermal(1)}
    assert train_folders and test_folders and not train_folders & test_folders


def test_regdb_missing_folder(regdb_copy: Path) -> None:
    shutil.rmtree(regdb_copy / 'Thermal')
    with pytest.raises(DatasetLayoutError, match='missing folder.*Thermal'):
        RegDB(regdb_copy)


def test_regdb_missing_split_file_on_use(regdb_copy: Path) -> None:
    (regdb_copy / 'idx' / 'test_thermal_4.txt').unlink()
    ds = RegDB(regdb_copy)  # other splits stay usable
    assert ds.test_thermal(1)
    with pytest.raises(DatasetLayoutError, match=r'missing split file .*test_thermal_4\.txt'):
        ds.test_visible(4)


def test_regdb_empty_split_file(regdb_copy: Path) -> None:
    (regdb_copy / 'idx' / 'train_visible_2.txt').write_text('\n')
    with pytest.raises(DatasetLayoutError, match=r'train_visible_2\.txt is empty'):
        RegDB(regdb_copy).train_set(2)


def test_regdb_listed_image_missing(regdb_copy: Path) -> None:
    path, _ = _idx_lines(regdb_copy, 'test_visible_1.txt')[5]
    (regdb_copy / path).unlink()
    with pytest.raises(
        DatasetLayoutError, match=r'test_visible_1\.txt:\d+: listed image .*does not exist'
    ) as err:
        RegDB(regdb_copy).test_visible(1)
    assert path in str(err.value)


def test_regdb_label_disagrees_with_folder(regdb_copy: Path) -> None:
    idx = regdb_copy / 'idx' / 'test_thermal_1.txt'
    lines = _idx_lines(regdb_copy, 'test_thermal_1.txt')
    other = next(lab for _, lab in lines if lab != lines[0][1])
    lines[0] = (lines[0][0], other)  # one image of folder A labelled as folder B
    idx.write_text(''.join(f'{p} {lab}\n' for p, lab in lines))
    with pytest.raises(DatasetLayoutError, match='disagrees with the identity folders'):
        RegDB(regdb_copy).test_thermal(1)


def test_regdb_bad_trial(regdb_root: Path) -> None:
    with pytest.raises(ValueError, match='1..10'):
        RegDB(regdb_root).test_visible(0)


# --------------------------------------------------------------------------------------------------
# vireid data check


def test_data_check_valid(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    sysu_root: Path,
    regdb_root: Path,
) -> None:
    assert _cli(monkeypatch, ['data', 'check', '--dataset', 'sysu', '--root', str(sysu_root)]) == 0
    out = capsys.readouterr().out
    ds = SYSUMM01(sysu_root)
    assert 'cam6' in out and 'all-multi' in out and f'OK: {len(ds.records)} images decoded' in out
    assert ds.fingerprint() in out
    assert (
        _cli(
            monkeypatch,
            ['data', 'check', '--dataset', 'regdb', '--root', str(regdb_root), '--quick'],
        )
        == 0
    )
    out = capsys.readouterr().out
    assert 'test thermal' in out and '(headers)' in out
    assert (
        len([ln for ln in out.splitlines() if ln.strip().split(' ')[0] == '10']) >= 1
    )  # split 10 row


def test_data_check_reports_bad_dataset(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, sysu_copy: Path
) -> None:
    victim = sorted(sysu_copy.glob('cam5/*/*.jpg'))[0]
    _truncate(victim)
    argv = ['data', 'check', '--dataset', 'sysu', '--root', str(sysu_copy)]
    assert _cli(monkeypatch, argv) == 2
    err = capsys.readouterr().err
    assert (
        'vireid data: error: 1 unreadable image(s)' in err
        and victim.relative_to(sysu_copy).as_posix() in err
    )
    assert _cli(monkeypatch, argv + ['--quick']) == 0  # header intact
    capsys.readouterr()
    (sysu_copy / 'exp' / 'rand_perm_cam.mat').unlink()
    # The protocol's official sampler needs the file: the check fails (the seeded draw is shown).
    assert _cli(monkeypatch, argv + ['--quick']) == 2
    captured = capsys.readouterr()
    assert 'seeded gallery' in captured.out and 'official gallery' not in captured.out
    assert 'exp/rand_perm_cam.mat are missing' in captured.err
    assert 'wuancong/SYSU-MM01' in captured.err
    # Every problem at once: the truncated image and the missing file.
    assert _cli(monkeypatch, argv) == 2
    err = capsys.readouterr().err
    assert '1 unreadable image(s)' in err and 'rand_perm_cam.mat are missing' in err
    shutil.rmtree(sysu_copy / 'exp')
    assert _cli(monkeypatch, argv) == 2
    assert 'no exp/ folder' in capsys.readouterr().err
