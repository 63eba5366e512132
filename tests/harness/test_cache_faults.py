"""The decode-once cache on a full disk (one message naming the folder and the bytes needed and
free, no unfinished file left) and with a damaged entry (decoded again)."""

from __future__ import annotations

import errno
import os
import shutil
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from harness.data import cache
from harness.data.cache import CacheSpaceError, load_images, npy_bytes
from harness.errors import describe, exit_code
from protocols.datasets import load_dataset

SIZE = (32, 16)
Usage = namedtuple('Usage', 'total used free')


@pytest.fixture
def records(sysu_root):
    return load_dataset('sysu', sysu_root).train_set().records[:12]


def _no_space(*args):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _only_the_released_writer_lock(folder):
    """No .npy.tmp and no entry: only the file the writer's flock was on, which nobody holds and
    which ``vireid cache clear`` removes."""
    left = list(folder.iterdir())
    assert [p.suffix for p in left] == [cache.LOCK_SUFFIX]
    assert cache.stale_locks(folder) == left


def test_a_full_disk_names_the_folder_and_the_bytes_and_leaves_nothing(
    sysu_root, records, tmp_path, monkeypatch
):
    folder = tmp_path / 'cache'
    monkeypatch.setattr(os, 'posix_fallocate', _no_space)
    monkeypatch.setattr(shutil, 'disk_usage', lambda p: Usage(10**9, 10**9 - 4096, 4096))
    with pytest.raises(CacheSpaceError) as err:
        load_images(sysu_root, records, SIZE, folder, label='sysu train')
    message = describe(err.value)
    need = npy_bytes(len(records), SIZE)
    assert (
        f'not enough free space in the cache folder {folder} for the sysu train images' in message
    )
    assert f'it needs {need} bytes' in message and '4096 bytes (0.0 MB) are free' in message
    assert '$VIREID_CACHE' in message and exit_code(err.value) == 2
    _only_the_released_writer_lock(folder)


def test_without_fallocate_the_free_space_is_checked(sysu_root, records, tmp_path, monkeypatch):
    def unsupported(*args):
        raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

    monkeypatch.setattr(os, 'posix_fallocate', unsupported)
    monkeypatch.setattr(shutil, 'disk_usage', lambda p: Usage(10**9, 10**9 - 100, 100))
    with pytest.raises(CacheSpaceError, match='100 bytes'):
        load_images(sysu_root, records, SIZE, tmp_path)
    assert not any(p.name.endswith('.tmp') for p in tmp_path.iterdir())
    monkeypatch.setattr(shutil, 'disk_usage', lambda p: Usage(10**9, 0, 10**9))
    assert load_images(sysu_root, records, SIZE, tmp_path).shape == (12, *SIZE, 3)


def test_an_error_while_decoding_leaves_no_unfinished_file(
    sysu_root, records, tmp_path, monkeypatch
):
    real = cache.decode

    def decode(root, record, *args):
        if record is records[5]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(root, record, *args)

    monkeypatch.setattr(cache, 'decode', decode)
    with pytest.raises(CacheSpaceError, match=str(tmp_path)):
        load_images(sysu_root, records, SIZE, tmp_path)
    _only_the_released_writer_lock(tmp_path)


def test_a_damaged_entry_is_decoded_again(sysu_root, records, tmp_path):
    first = np.array(load_images(sysu_root, records, SIZE, tmp_path))
    (entry,) = tmp_path.glob('*.npy')
    with open(entry, 'r+b') as f:
        f.truncate(300)  # cut short: the header says more than the file holds
    again = load_images(sysu_root, records, SIZE, tmp_path)
    np.testing.assert_array_equal(again, first)
    assert entry.stat().st_size == npy_bytes(len(records), SIZE)
    entry.write_bytes(b'not an array at all')
    np.testing.assert_array_equal(load_images(sysu_root, records, SIZE, tmp_path), first)


def test_the_file_written_is_the_npy_np_save_writes(sysu_root, records, tmp_path):
    images = load_images(sysu_root, records, SIZE, tmp_path)
    (entry,) = tmp_path.glob('*.npy')
    reference = tmp_path / 'reference.npy'
    np.save(reference, np.asarray(images))
    assert entry.read_bytes() == reference.read_bytes()
    empty = load_images(sysu_root, [], SIZE, tmp_path / 'empty')
    assert empty.shape == (0, *SIZE, 3)
    assert Path(next((tmp_path / 'empty').glob('*.npy'))).stat().st_size == npy_bytes(0, SIZE)
