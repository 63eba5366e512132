"""``vireid train`` keeps what is already there and finds missing protocol files before training.

A second ``vireid train`` onto a work dir that holds a run replaced that run's record and
checkpoints without a word; a SYSU-MM01 root without ``exp/rand_perm_cam.mat``, or a RegDB
``idx/`` line naming a missing image, failed only when the trained model was scored.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import methods
from harness.cli import main

CONFIGS = Path(methods.__file__).parent / 'agw' / 'configs'
REGDB_DEMO = CONFIGS / 'agw_demo_regdb.py'
SYSU_DEMO = CONFIGS / 'agw_demo_sysu.py'
ONE_EPOCH = ['--cfg-options', 'train_cfg.max_epochs=1']


def _train(config: Path, work: Path, root: Path, *extra: str) -> int:
    return main(['train', str(config), '--work-dir', str(work), '--data-root', str(root), *extra])


def _digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _files(work: Path) -> dict[str, str]:
    """Every file of a run directory and its digest; the lock file aside (taking the lock writes
    the holder's name into it)."""
    return {p.name: _digest(p) for p in work.iterdir() if p.is_file() and p.name != '.lock'}


@pytest.fixture(scope='module')
def finished(regdb_root, tmp_path_factory):
    """A finished one-epoch AGW demo run on RegDB (split 1)."""
    work = tmp_path_factory.mktemp('finished') / 'run'
    assert _train(REGDB_DEMO, work, regdb_root, *ONE_EPOCH) == 0
    return work


def test_a_second_train_onto_a_finished_run_is_refused_and_changes_nothing(
    finished, regdb_root, capsys
):
    before = _files(finished)
    code = _train(REGDB_DEMO, finished, regdb_root, *ONE_EPOCH, 'optim_wrapper.optimizer.lr=0.01')
    err = capsys.readouterr().err
    assert code == 2, err
    assert f'--work-dir {finished} already holds a done run (config hash ' in err
    assert '--resume' in err and '--rerun' in err and 'Traceback' not in err
    after = _files(finished)
    assert after == before


def test_resume_and_rerun_together_are_refused(finished, regdb_root, capsys):
    assert _train(REGDB_DEMO, finished, regdb_root, '--resume', '--rerun') == 2
    assert '--resume continues the run in --work-dir, --rerun starts it again' in (
        capsys.readouterr().err
    )


def test_rerun_moves_the_earlier_run_aside_and_trains_again(regdb_root, tmp_path, capsys):
    work = tmp_path / 'run'
    assert _train(REGDB_DEMO, work, regdb_root, *ONE_EPOCH) == 0
    first = _digest(work / 'record.json')
    ckpt = _digest(work / 'epoch_1.pth')
    capsys.readouterr()
    code = _train(
        REGDB_DEMO, work, regdb_root, '--rerun', *ONE_EPOCH, 'optim_wrapper.optimizer.lr=0.01'
    )
    err = capsys.readouterr().err
    assert code == 0, err
    (aside,) = (work / 'superseded').iterdir()
    assert f'[train] {work}: the earlier run (config hash ' in err and str(aside) in err
    assert _digest(aside / 'record.superseded.json') == first
    assert _digest(aside / 'epoch_1.pth') == ckpt
    assert (work / 'record.json').is_file() and _digest(work / 'record.json') != first


def test_a_sysu_root_without_rand_perm_cam_stops_before_training(sysu_copy, tmp_path, capsys):
    (sysu_copy / 'exp' / 'rand_perm_cam.mat').unlink()
    work = tmp_path / 'run'
    code = _train(SYSU_DEMO, work, sysu_copy, *ONE_EPOCH)
    err = capsys.readouterr().err
    assert code == 2, err
    assert 'nothing was trained: the protocol needs files that are not there' in err
    assert str(sysu_copy / 'exp' / 'rand_perm_cam.mat') in err and 'Traceback' not in err
    assert not work.exists()


def test_a_regdb_idx_line_naming_a_missing_image_stops_before_training(
    regdb_copy, tmp_path, capsys
):
    idx = regdb_copy / 'idx' / 'test_visible_1.txt'
    with open(idx, 'a') as f:
        f.write('Visible/2/male_back_v_99999_2.bmp 0\n')
    work = tmp_path / 'run'
    code = _train(REGDB_DEMO, work, regdb_copy, *ONE_EPOCH)
    err = capsys.readouterr().err
    assert code == 2, err
    assert 'male_back_v_99999_2.bmp' in err and 'test_visible_1.txt' in err
    assert not work.exists()
