"""``vireid score`` asks only for the images its setting uses, and warns on degenerate features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from protocols.datasets import load_dataset
from protocols.evaluation import test_records


def _npz(path: Path, records, features: np.ndarray) -> Path:
    np.savez(path, features=features, paths=np.array([r.path for r in records]))
    return path


def _one_hot(records) -> np.ndarray:
    pids = sorted({r.pid for r in records})
    return np.eye(len(pids), dtype=np.float32)[[pids.index(r.pid) for r in records]]


def test_indoor_search_needs_the_queries_and_cams_1_2_only(sysu_root, tmp_path, capsys):
    ds = load_dataset('sysu', sysu_root)
    indoor = ds.query_records() + [r for r in ds.gallery_candidates() if r.cam in (1, 2)]
    assert len(indoor) < len(test_records(ds, None))  # cams 4, 5 are left out
    npz = _npz(tmp_path / 'indoor.npz', indoor, _one_hot(indoor))
    out = tmp_path / 'r.json'
    argv = ['score', str(npz), '--dataset', 'sysu', '--root', str(sysu_root), '--json', str(out)]
    assert main(argv + ['--mode', 'indoor']) == 0
    result = json.loads(out.read_text())
    assert result['setting'] == 'indoor-single' and result['mean']['R1'] == 100.0
    assert result['warnings'] == []
    capsys.readouterr()
    # All-search does need cams 4, 5, and says which images are missing.
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert 'no feature for' in err and 'gallery image(s) the protocol needs' in err


@pytest.mark.parametrize(
    'features, says',
    [
        (lambda n: np.zeros((n, 8), np.float32), 'feature rows are all zeros'),
        (lambda n: np.ones((n, 8), np.float32), 'feature rows are identical'),
    ],
)
def test_degenerate_features_are_scored_with_a_warning(
    regdb_root, tmp_path, capsys, features, says
):
    records = test_records('regdb', regdb_root)
    npz = _npz(tmp_path / 'f.npz', records, features(len(records)))
    out = tmp_path / 'r.json'
    assert (
        main(
            ['score', str(npz), '--dataset', 'regdb', '--root', str(regdb_root), '--json', str(out)]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert f'vireid score: warning: {npz}: ' in err and says in err
    assert any(says in w for w in json.loads(out.read_text())['warnings'])
