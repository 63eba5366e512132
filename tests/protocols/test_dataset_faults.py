"""Damaged datasets the readers name instead of skipping: a symbolic link to nothing (an image or
an identity folder) would silently drop images from the protocol; a file name that is not UTF-8
would fail later without its path. And a dataset root whose own name is not UTF-8 works."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from protocols.datasets import load_dataset
from protocols.datasets.base import DatasetLayoutError
from protocols.evaluation import test_records


def _dangle(image: Path) -> Path:
    """Replace ``image`` by a symbolic link to a file that does not exist."""
    image.unlink()
    target = image.parent / 'gone' / image.name
    image.symlink_to(target)
    return target


def _first(folder: Path, pattern: str = '*') -> Path:
    return sorted(folder.glob(pattern))[0]


def test_sysu_query_linked_to_nothing_is_an_error_not_a_lost_query(sysu_copy, capsys):
    queries = load_dataset('sysu', sysu_copy).query_records()
    image = sysu_copy / queries[0].path
    target = _dangle(image)
    with pytest.raises(DatasetLayoutError) as err:
        load_dataset('sysu', sysu_copy)
    assert f'{image} is a symbolic link to {target}, which does not exist' in str(err.value)
    assert main(['data', 'check', '--dataset', 'sysu', '--root', str(sysu_copy), '--quick']) == 2
    out = capsys.readouterr()
    assert str(image) in out.err and 'OK:' not in out.out
    image.unlink()  # the link removed: the query is gone for a reason the user chose
    assert len(load_dataset('sysu', sysu_copy).query_records()) == len(queries) - 1


def test_sysu_identity_folder_linked_to_nothing_is_an_error(sysu_copy):
    folder = _first(sysu_copy / 'cam1')
    shutil.rmtree(folder)
    folder.symlink_to(sysu_copy / 'nowhere')
    with pytest.raises(DatasetLayoutError, match=f'{folder} is a symbolic link to'):
        load_dataset('sysu', sysu_copy)


def test_regdb_image_linked_to_nothing_is_named(regdb_copy):
    image = _first(_first(regdb_copy / 'Thermal'), '*.bmp')
    _dangle(image)
    with pytest.raises(DatasetLayoutError, match=f'{image} is a symbolic link to'):
        load_dataset('regdb', regdb_copy)


def test_llcm_test_image_linked_to_nothing_is_named(llcm_copy):
    image = _first(_first(_first(llcm_copy / 'test_nir')), '*.jpg')
    _dangle(image)
    with pytest.raises(DatasetLayoutError, match=f'{image} is a symbolic link to'):
        load_dataset('llcm', llcm_copy)


def test_image_name_that_is_not_utf8_is_named(sysu_copy, capsys):
    folder = _first(sysu_copy / 'cam6')
    src = _first(folder, '*.jpg')
    odd = os.fsencode(folder) + b'/\xff01.jpg'
    shutil.copy(src, os.fsdecode(odd))
    assert main(['data', 'check', '--dataset', 'sysu', '--root', str(sysu_copy), '--quick']) == 2
    err = capsys.readouterr().err
    assert f'image {folder}/\\xff01.jpg: its file name is not UTF-8' in err
    assert 'rename the file' in err and "can't encode" not in err


def test_a_root_whose_name_is_not_utf8_is_read_and_scored(sysu_root, tmp_path, capsys):
    root = Path(os.fsdecode(os.fsencode(tmp_path) + b'/SYSU-\xff'))
    shutil.copytree(sysu_root, root)
    assert main(['data', 'check', '--dataset', 'sysu', '--root', str(root), '--quick']) == 0
    assert 'fingerprint' in capsys.readouterr().out
    records = test_records('sysu', root)
    feats = tmp_path / 'f.npz'
    np.savez(
        feats,
        paths=np.array([r.path for r in records]),
        features=np.eye(len(records), 16, dtype=np.float32),
    )
    out = Path(os.fsdecode(os.fsencode(tmp_path) + b'/r-\xff.json'))
    argv = ['score', str(feats), '--dataset', 'sysu', '--root', str(root), '--json', str(out)]
    assert main(argv) == 0
    assert out.is_file() and 'wrote' in capsys.readouterr().out
