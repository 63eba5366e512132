"""A features file that is not what ``vireid score`` reads gets one message naming the file and
what to write instead; nothing in it is ever unpickled."""

from __future__ import annotations

import numpy as np
import pytest

from protocols.scoring import load_features, save_features

PATHS = np.array(['cam3/0001/0001.jpg', 'cam1/0001/0001.jpg'])


def _damaged(tmp_path, kind):
    path = tmp_path / 'f.npz'
    if kind == 'random bytes':
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == 'a pickle':
        import pickle

        path.write_bytes(pickle.dumps({'features': [1, 2]}))
    elif kind == 'cut short':
        save_features(path, PATHS, np.ones((2, 4)))
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == 'text':
        path.write_text('features,paths\n')
    elif kind == 'empty':
        path.write_bytes(b'')
    return path


@pytest.mark.parametrize('kind', ['random bytes', 'a pickle', 'cut short', 'text', 'empty'])
def test_a_file_that_is_not_an_npz_is_named(tmp_path, kind):
    path = _damaged(tmp_path, kind)
    with pytest.raises(ValueError) as err:
        load_features(path)
    message = str(err.value)
    assert message.startswith(str(path)) and 'allow_pickle' not in message
    assert 'np.savez' in message or 'vireid extract' in message


@pytest.mark.parametrize('key', ['features', 'paths'])
def test_arrays_of_python_objects_are_refused_not_unpickled(tmp_path, key):
    arrays = dict(features=np.ones((2, 4), np.float32), paths=PATHS)
    arrays[key] = np.array(list(arrays[key]) + [None], dtype=object)[:-1]
    path = tmp_path / 'objects.npz'
    np.savez(path, **arrays)
    with pytest.raises(ValueError) as err:
        load_features(path)
    message = str(err.value)
    assert f'{path}: "{key}" is stored as Python objects (dtype object)' in message
    assert 'never unpickled' in message and 'allow_pickle' not in message


def test_a_good_file_still_loads(tmp_path):
    path = save_features(tmp_path / 'ok.npz', PATHS, np.eye(2, 4))
    paths, feats = load_features(path)
    assert paths == list(PATHS) and feats.dtype == np.float32 and feats.shape == (2, 4)
