"""The LLCM protocol (protocols.datasets.llcm, protocols.trials, protocols.metrics, evaluation)
against transcriptions of the official rules written here from ZYK100/LLCM@886e27c DEEN/:
data_manager.py process_query_llcm / process_gallery_llcm (the folder order and the seeded draw),
eval_metrics.py eval_llcm (same identity and camera removed, unique-identity CMC, mAP, mINP) and
test.py (ten draws seeded 0..9; VIS->IR computed with the sampled infrared images as probes).
"""

from __future__ import annotations

import os
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from protocols import device
from protocols.datasets import DATASETS, TRAIN_CLASSES, dataset_info, load_dataset
from protocols.datasets.base import DatasetLayoutError, Modality
from protocols.datasets.llcm import LLCM
from protocols.evaluation import (
    LLCM_PROTOCOL,
    check_protocol,
    evaluate,
    evaluate_with_info,
    settings,
    test_records,
)
from protocols.metrics import (
    eval_llcm,
    evaluate_llcm_trial,
    rank_matches,
    rank_matches_sorted,
    trial_metrics,
)
from protocols.ranking import CandidatePool, rank_gallery
from protocols.retrieval import retrieval_setting
from protocols.trials import LLCM_DIRECTIONS, LLCM_SETTINGS, llcm_draw, llcm_draws

DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
VIS_CAMS = [f'test_vis/cam{c}' for c in range(1, 10)]
NIR_CAMS = [f'test_nir/cam{c}' for c in (1, 2, 4, 5, 6, 7, 8, 9)]

# --------------------------------------------------------------------------------------------------
# Transcriptions of the official rules (written from the code's behaviour, read literally)


def official_query(root: Path, cameras: list[str]) -> list[str]:
    """process_query_llcm: every file of every (test id, camera) folder, ids as sorted 4-digit
    strings, cameras in list order, files sorted."""
    line = (root / 'idx/test_id.txt').read_text().splitlines()[0]
    ids = [f'{int(y):04d}' for y in line.split(',')]  # '%04d' % x
    out = []
    for pid in sorted(ids):
        for cam in cameras:
            folder = os.path.join(str(root), cam, pid)
            if os.path.isdir(folder):
                out += sorted(folder + '/' + name for name in os.listdir(folder))
    return out


def official_draw(root: Path, cameras: list[str], trial: int) -> list[str]:
    """process_gallery_llcm: random.seed(trial), then one random.choice per folder, same order."""
    line = (root / 'idx/test_id.txt').read_text().splitlines()[0]
    ids = [f'{int(y):04d}' for y in line.split(',')]  # '%04d' % x
    state = random.getstate()
    random.seed(trial)
    out = []
    for pid in sorted(ids):
        for cam in cameras:
            folder = os.path.join(str(root), cam, pid)
            if os.path.isdir(folder):
                out.append(random.choice(sorted(folder + '/' + n for n in os.listdir(folder))))
    random.setstate(state)
    return out


def labels(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(pids, cams) from the .../cam<K>/<pid>/<file> components."""
    parts = [p.split('/') for p in paths]
    return np.array([int(p[-2]) for p in parts]), np.array([int(p[-3][3:]) for p in parts])


def transcribed_eval_llcm(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=20):
    """eval_llcm's rule per probe: sort (stably: equal distances keep gallery order), drop the
    gallery entries of the probe's identity and camera, unique-identity CMC (short rows padded with
    their last value), AP, INP; probes without a correct match left are skipped."""
    num_q, num_g = distmat.shape
    max_rank = min(max_rank, num_g)
    curves, aps, inps = [], [], []
    for q in range(num_q):
        order = sorted(range(num_g), key=lambda j: distmat[q][j])  # Python's sort is stable
        kept = [j for j in order if not (g_pids[j] == q_pids[q] and g_cams[j] == q_cams[q])]
        hits = [g_pids[j] == q_pids[q] for j in kept]
        if not any(hits):
            continue
        distinct = []
        for j in kept:
            if g_pids[j] not in distinct:
                distinct.append(g_pids[j])
        curve, found = [], False
        for pid in distinct[:max_rank]:
            found = found or pid == q_pids[q]
            curve.append(float(found))
        curve += [curve[-1]] * (max_rank - len(curve))
        curves.append(curve)
        n, precisions, last = 0, [], 0
        for i, hit in enumerate(hits, start=1):
            if hit:
                n += 1
                precisions.append(n / i)
                last = i
        aps.append(sum(precisions) / n)
        inps.append(n / last)
    if not aps:
        return None, None, None, 0
    return np.mean(curves, axis=0), float(np.mean(aps)), float(np.mean(inps)), len(aps)


def random_problem(rng: np.random.Generator, kind: str):
    num_q, num_g, n_ids = rng.integers(1, 25), rng.integers(1, 60), rng.integers(1, 10)
    if kind == 'continuous':
        dist = rng.random((num_q, num_g))
    else:  # few distinct values: ties between positives, negatives and removed entries
        dist = rng.integers(0, 3, (num_q, num_g)).astype(float)
        if kind == 'inf':
            dist[rng.random(dist.shape) < 0.2] = np.inf
    q_pids = rng.integers(0, n_ids + 2, num_q)  # some probe ids have no gallery entry at all
    g_pids = rng.integers(0, n_ids, num_g)
    # Few cameras: many probes lose some or all of their correct matches to the rule.
    q_cams, g_cams = rng.integers(1, 4, num_q), rng.integers(1, 4, num_g)
    return dist, q_pids, g_pids, q_cams, g_cams


# --------------------------------------------------------------------------------------------------
# The metric


@pytest.mark.parametrize('kind', ['continuous', 'ties', 'inf'])
def test_eval_llcm_equals_the_transcribed_rule(kind: str) -> None:
    rng = np.random.default_rng({'continuous': 1, 'ties': 2, 'inf': 3}[kind])
    compared = invalid_probes = 0
    for _ in range(150):
        dist, q_pids, g_pids, q_cams, g_cams = random_problem(rng, kind)
        ref = transcribed_eval_llcm(dist, q_pids, g_pids, q_cams, g_cams)
        if ref[3] == 0:
            with pytest.raises(ValueError, match='no valid query'):
                eval_llcm(dist, q_pids, g_pids, q_cams, g_cams)
            continue
        cmc, mAP, mINP = eval_llcm(dist, q_pids, g_pids, q_cams, g_cams)
        assert cmc.dtype == np.float32
        np.testing.assert_allclose(cmc, ref[0], rtol=0, atol=1e-6)
        assert mAP == pytest.approx(ref[1], abs=1e-12)
        assert mINP == pytest.approx(ref[2], abs=1e-12)
        trial = evaluate_llcm_trial(dist, q_pids, g_pids, q_cams, g_cams)
        assert trial.n_valid_queries == ref[3]
        assert trial.mAP == pytest.approx(100 * ref[1], abs=1e-9)
        compared += 1
        invalid_probes += len(q_pids) - ref[3]
    assert compared > 100 and invalid_probes > 50  # the rule removed every match of many probes


def test_the_rule_removes_only_the_probes_own_identity_in_its_own_camera() -> None:
    # Probe: id 1, camera 2. Gallery by distance: id 1 cam 2 (removed), id 5 cam 2 (another
    # identity: kept), id 1 cam 3 (kept).
    dist = np.array([[0.1, 0.2, 0.3]])
    cmc, mAP, _ = eval_llcm(dist, [1], [1, 5, 1], [2], [2, 2, 3])
    assert cmc[0] == 0 and cmc[1] == 1  # the removed entry would have been rank 1
    assert mAP == pytest.approx(1 / 2)
    # The SYSU rule (query cam 3 drops every cam 2) would keep the first entry here.
    ranks = rank_matches(dist, [1], [1, 5, 1], [2], [2, 2, 3], camera_rule='sysu')
    assert ranks.first_rank[0] == 1
    with pytest.raises(ValueError, match='camera_rule'):
        rank_matches(dist, [1], [1, 5, 1], [2], [2, 2, 3], camera_rule='same')


@pytest.mark.parametrize('dev', DEVICES)
@pytest.mark.parametrize('kind', ['continuous', 'ties', 'inf'])
def test_fast_paths_equal_the_sorting_implementation_under_the_llcm_rule(
    kind: str, dev: str
) -> None:
    rng = np.random.default_rng({'continuous': 11, 'ties': 12, 'inf': 13}[kind])
    for _ in range(50):
        dist, q_pids, g_pids, q_cams, g_cams = random_problem(rng, kind)
        cams = (q_cams, g_cams)
        ref = rank_matches_sorted(dist, q_pids, g_pids, *cams, camera_rule='llcm')
        pool = CandidatePool(dist, q_pids, g_pids, *cams, camera_rule='llcm')
        dpool = device.DevicePool(torch.from_numpy(dist).to(dev), q_pids, g_pids, *cams, 'llcm')
        got = [rank_gallery(dist, q_pids, g_pids, *cams, camera_rule='llcm'), pool.ranks()]
        got.append(dpool.ranks())
        for _ in range(3):  # galleries in an order other than the pool's
            g = rng.permutation(dist.shape[1])[: rng.integers(1, dist.shape[1] + 1)]
            sub = rank_matches_sorted(
                dist[:, g], q_pids, g_pids[g], q_cams, g_cams[g], camera_rule='llcm'
            )
            got_g = (pool.ranks(g), dpool.ranks(g))
            for r in got_g:
                _assert_same(r, sub)
        for r in got:
            _assert_same(r, ref)


def _assert_same(got, ref) -> None:
    for key in ('valid', 'first_rank', 'first_unique_rank', 'n_positives'):
        np.testing.assert_array_equal(getattr(got, key), getattr(ref, key), err_msg=key)
    for key in ('ap', 'inp'):
        np.testing.assert_allclose(getattr(got, key), getattr(ref, key), rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------------------
# A tiny layout written by hand


def _image(path: Path, value: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 4, 3), value, np.uint8)).save(path)


def make_layout(root: Path) -> Path:
    """Test ids 12, 3 and 40 (listed out of order); cameras and file counts chosen so the draws
    differ; a test_nir/cam3 folder and a non-test folder that the protocol never reads."""
    files = {
        ('test_vis', 1, 3): 3, ('test_vis', 4, 3): 2, ('test_nir', 2, 3): 4,
        ('test_vis', 2, 12): 5, ('test_nir', 1, 12): 1, ('test_nir', 9, 12): 3,
        ('test_vis', 9, 40): 2, ('test_vis', 3, 40): 1, ('test_nir', 4, 40): 2,
        ('test_nir', 3, 40): 2,  # never read: the official infrared list has no camera 3
        ('test_vis', 1, 99): 2,  # never read: 99 is no test id
    }  # fmt: skip
    for (top, cam, pid), n in files.items():
        for k in range(n):
            kind = 'vis' if top == 'test_vis' else 'nir'
            _image(root / top / f'cam{cam}' / f'{pid:04d}' / f'{pid:04d}_c0{cam}_f{k}_{kind}.jpg')
    lines = {'vis': [], 'nir': []}
    (root / 'idx').mkdir()
    for label, pid in enumerate((1, 2)):
        for kind in lines:
            for k in range(2):
                rel = f'{kind}/{pid:04d}/{pid:04d}_c01_f{k}_{kind}.jpg'
                _image(root / rel, 50 * label)
                lines[kind].append(f'{rel} {label}')
    for kind, text in lines.items():
        (root / 'idx' / f'train_{kind}.txt').write_text('\n'.join(text) + '\n')
    (root / 'idx/test_id.txt').write_text('12,3,40\n')
    return root


def test_reader_gives_the_official_order_ids_and_cameras(tmp_path: Path) -> None:
    root = make_layout(tmp_path / 'LLCM')
    ds = load_dataset('llcm', root)
    assert isinstance(ds, LLCM) and ds.test_ids == (12, 3, 40)
    for modality, cams in ((Modality.VISIBLE, VIS_CAMS), (Modality.INFRARED, NIR_CAMS)):
        recs = ds.test_images(modality)
        expected = official_query(root, cams)
        assert [str(root / r.path) for r in recs] == expected
        pids, cams_ = labels(expected)
        assert [r.pid for r in recs] == list(pids) and [r.cam for r in recs] == list(cams_)
        assert all(r.modality == modality for r in recs)
    assert {r.cam for r in ds.test_images(Modality.INFRARED)} == {1, 2, 4, 9}  # no camera 3
    assert sorted(ds.unread) == ['test_nir/cam3', 'test_vis/cam1/0099']
    train = ds.train_set()
    assert train.num_classes == 2 and sorted(set(train.labels)) == [0, 1]
    assert {r.cam for r in train.records} == {0}
    assert (
        len(train.by_modality(Modality.VISIBLE)) == len(train.by_modality(Modality.INFRARED)) == 4
    )
    stats = ds.statistics()
    assert stats['sets'][1] == dict(set='test (idx/test_id.txt)', ids=3, visible=13, infrared=10)
    assert len(ds.records) == 8 + 13 + 10
    assert ds.fingerprint() == LLCM(root).fingerprint()


def test_a_root_with_cam_in_its_path_reads_the_same(tmp_path: Path) -> None:
    # The official parser takes the first "cam" of the full path: this root would break it.
    root = make_layout(tmp_path / 'camera' / 'LLCM')
    recs = LLCM(root).test_images(Modality.VISIBLE)
    assert [(r.pid, r.cam) for r in recs][:3] == [(3, 1), (3, 1), (3, 1)]


def test_draws_are_the_official_python_random_draws(tmp_path: Path) -> None:
    root = make_layout(tmp_path / 'LLCM')
    ds = LLCM(root)
    random.seed(12345)
    before = random.getstate()
    for modality, cams in ((Modality.VISIBLE, VIS_CAMS), (Modality.INFRARED, NIR_CAMS)):
        candidates = ds.test_images(modality)
        picks = []
        for trial in range(10):
            drawn = llcm_draw(ds, modality, trial)
            paths = [str(root / candidates[i].path) for i in drawn]
            assert paths == official_draw(root, cams, trial)
            # One image per existing (identity, camera) folder, in the official order.
            keys = [(r.pid, r.cam) for r in (candidates[i] for i in drawn)]
            assert keys == sorted(set(keys), key=lambda k: (f'{k[0]:04d}', k[1]))
            picks.append(tuple(drawn))
        assert len(set(picks)) > 1  # the seeds draw different galleries
        assert [tuple(d) for d in llcm_draws(ds, modality, 10)] == picks  # deterministic
    assert random.getstate() == before  # the global random state is left alone
    with pytest.raises(ValueError, match='1..10'):
        llcm_draws(ds, Modality.VISIBLE, 11)


def test_a_stray_file_changes_the_draw_as_in_the_official_code(tmp_path: Path) -> None:
    root = make_layout(tmp_path / 'LLCM')
    folder = root / 'test_vis/cam2/0012'
    (folder / 'zz_notes.txt').write_text('x')
    ds = LLCM(root)
    assert ds.stray_files == ['test_vis/cam2/0012/zz_notes.txt']
    assert 'test_vis/cam2/0012/zz_notes.txt' not in {r.path for r in ds.test_images(0)}
    for trial in range(10):
        expected = official_draw(root, VIS_CAMS, trial)
        if str(folder / 'zz_notes.txt') in expected:
            with pytest.raises(DatasetLayoutError, match='zz_notes.txt.*not a test image'):
                with warnings.catch_warnings():
                    warnings.simplefilter('ignore')
                    llcm_draw(ds, Modality.VISIBLE, trial)
        else:
            with pytest.warns(UserWarning, match='non-image'):
                drawn = llcm_draw(ds, Modality.VISIBLE, trial)
            cands = ds.test_images(Modality.VISIBLE)
            assert [str(root / cands[i].path) for i in drawn] == expected


# --------------------------------------------------------------------------------------------------
# Layout errors: each names the path and the expected layout


def _drop(rel: str):
    def change(root: Path) -> None:
        path = root / rel
        if path.is_dir():
            import shutil

            shutil.rmtree(path)
        else:
            path.unlink()

    return change


def _write(rel: str, text: str):
    return lambda root: (root / rel).write_text(text)


def _empty_test_folder(root: Path) -> None:
    for f in (root / 'test_vis/cam9/0040').iterdir():
        f.unlink()


LAYOUT_ERRORS = {
    'no idx': (_drop('idx'), r'missing folder\(s\) idx; expected the LLCM release layout'),
    'no test_nir': (_drop('test_nir'), r'missing folder\(s\) test_nir'),
    'no test ids': (_drop('idx/test_id.txt'), 'missing test identity file .*test_id.txt'),
    'empty test ids': (_write('idx/test_id.txt', '\n\n'), 'test_id.txt is empty'),
    'bad test id': (_write('idx/test_id.txt', '12,x3'), "'x3' is not a person id"),
    'repeated test id': (_write('idx/test_id.txt', '12,3,12'), r'lists ids \[12\] more than once'),
    'id without images': (_write('idx/test_id.txt', '12,3,40,7'), r'id\(s\) with no test image.*7'),
    'empty test folder': (_empty_test_folder, 'test_vis/cam9/0040 holds no image'),
}
TRAIN_ERRORS = {
    'no list': (_drop('idx/train_nir.txt'), 'missing training list .*train_nir.txt'),
    'malformed': (_write('idx/train_vis.txt', 'vis/0001/a.jpg\n'), r'train_vis.txt:1: malformed'),
    'missing image': (_write('idx/train_vis.txt', 'vis/0001/none.jpg 0\n'), 'does not exist'),
    'twice': (
        _write('idx/train_vis.txt', 'vis/0001/0001_c01_f0_vis.jpg 0\n' * 2 + 'x'),
        'train_vis.txt:2: .* listed twice',
    ),
    'one modality': (
        _write('idx/train_vis.txt', 'vis/0001/0001_c01_f0_vis.jpg 0\n'),
        r'train_nir.txt alone has labels \[1\]',
    ),
    'test image': (
        _write('idx/train_vis.txt', 'test_vis/cam1/0003/0003_c01_f0_vis.jpg 0\n'),
        'is a test image',
    ),
    'empty': (_write('idx/train_vis.txt', '\n'), 'train_vis.txt is empty'),
}


@pytest.mark.parametrize('case', sorted(LAYOUT_ERRORS))
def test_layout_errors_name_the_path_and_the_expected_layout(tmp_path: Path, case: str) -> None:
    change, match = LAYOUT_ERRORS[case]
    root = make_layout(tmp_path / 'LLCM')
    change(root)
    with pytest.raises(DatasetLayoutError, match=match) as err:
        LLCM(root)
    assert str(root) in str(err.value) and 'fix' in str(err.value)


@pytest.mark.parametrize('case', sorted(TRAIN_ERRORS))
def test_training_list_errors_name_the_file_and_line(tmp_path: Path, case: str) -> None:
    change, match = TRAIN_ERRORS[case]
    root = make_layout(tmp_path / 'LLCM')
    change(root)
    ds = LLCM(root)  # the test side is fine
    with pytest.raises(DatasetLayoutError, match=match) as err:
        ds.train_set()
    assert str(root) in str(err.value)


def test_missing_root_says_what_layout_is_expected(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match='expected the LLCM release layout') as err:
        LLCM(tmp_path / 'nothing')
    assert str(tmp_path / 'nothing') in str(err.value)


# --------------------------------------------------------------------------------------------------
# The protocol: registry, protocol dict, both directions and test.py's swap


def test_registry_and_protocol_dict() -> None:
    assert DATASETS == ('sysu', 'regdb', 'llcm') and TRAIN_CLASSES['llcm'] == 713
    info = dataset_info('llcm')
    assert info.title == 'LLCM' and info.reader == 'protocols.datasets.llcm:LLCM'
    assert info.settings['ir2vis'][1] == 'IR→VIS' and info.settings['vis2ir'][1] == 'VIS→IR'
    assert settings('llcm') == ['ir2vis', 'vis2ir']
    assert (
        check_protocol('llcm')
        == dict(LLCM_PROTOCOL)
        == dict(dataset='llcm', directions=LLCM_DIRECTIONS, trials=10, max_rank=20)
    )
    p = check_protocol('llcm', dict(directions=['vis2ir-conventional'], trials=3))
    assert p['directions'] == ('vis2ir-conventional',) and p['trials'] == 3
    for bad, match in (
        (dict(directions=['v2t']), 'directions'),
        (dict(trials=11), r'trials must be an integer in 1..10'),
        (dict(split=1), r"unknown key\(s\) \['split'\]"),
        (dict(dataset='sysu'), "protocol is for dataset 'sysu'"),
    ):
        with pytest.raises(ValueError, match=match):
            check_protocol('llcm', bad)
    with pytest.raises(ValueError, match='unknown dataset'):
        dataset_info('market')


def _features(recs, seed: int = 0, quantise: bool = False) -> np.ndarray:
    """Identity-clustered features (the metrics far from 0 and 100); L2-normalised, or with
    ``quantise`` small integers, whose squared Euclidean distances are exact: ties between
    identities are then the same ties in every computation."""
    feats = np.random.default_rng(seed).normal(size=(len(recs), 8))
    centres = np.random.default_rng(seed + 1).normal(size=(10000, 8))
    feats = feats + 1.5 * centres[[r.pid for r in recs]]
    if quantise:
        return np.round(feats)
    return feats / np.linalg.norm(feats, axis=1, keepdims=True)


def _distance(p: np.ndarray, g: np.ndarray, quantise: bool) -> np.ndarray:
    """test.py's ranking distance -(p . g) on normalised features; the exact squared Euclidean
    distance on integer ones."""
    if quantise:
        p, g = p.astype(np.int64), g.astype(np.int64)
        return ((p * p).sum(1)[:, None] + (g * g).sum(1)[None, :] - 2 * p @ g.T).astype(float)
    return -(p @ g.T)


@pytest.mark.parametrize('quantise', [False, True])
def test_both_directions_and_the_swap_equal_test_py(llcm_root: Path, quantise: bool) -> None:
    """Every trial of every setting against test.py transcribed: its query list, its draw, its
    distance matrix and its eval_llcm call (arguments swapped for VIS->IR)."""
    recs = test_records('llcm', llcm_root)
    feats = _features(recs, quantise=quantise)
    feat_of = {str(llcm_root / r.path): f for r, f in zip(recs, feats)}
    protocol = dict(directions=LLCM_SETTINGS)
    distance = 'euclidean' if quantise else 'cosine'
    results, info = evaluate_with_info('llcm', llcm_root, protocol, recs, feats, distance)
    assert list(results) == list(LLCM_SETTINGS)
    vis_all, nir_all = official_query(llcm_root, VIS_CAMS), official_query(llcm_root, NIR_CAMS)
    for trial in range(10):
        vis_drawn = official_draw(llcm_root, VIS_CAMS, trial)
        nir_drawn = official_draw(llcm_root, NIR_CAMS, trial)
        cases = {
            # test_mode [1, 2]: query = every NIR image, gallery = the VIS draw;
            # eval_llcm(-(q g^T), q_label, g_label, q_cam, g_cam)
            'ir2vis': (nir_all, vis_drawn),
            # test_mode [2, 1]: query = every VIS image, gallery = the NIR draw, but
            # eval_llcm(-(g q^T), g_label, q_label, g_cam, q_cam): the draw is the probe side
            'vis2ir': (nir_drawn, vis_all),
            # the conventional reading: every VIS image probes the NIR draw
            'vis2ir-conventional': (vis_all, nir_drawn),
        }
        for setting, (probes, ranked) in cases.items():
            p = np.array([feat_of[x] for x in probes])
            g = np.array([feat_of[x] for x in ranked])
            (p_pids, p_cams), (g_pids, g_cams) = labels(probes), labels(ranked)
            dist = _distance(p, g, quantise)
            cmc, mAP, mINP, n = transcribed_eval_llcm(dist, p_pids, g_pids, p_cams, g_cams)
            got = results[setting].per_trial[trial]
            assert got.n_valid_queries == n == len(probes)  # synthetic: every probe has a match
            assert got.mAP == pytest.approx(100 * mAP, abs=1e-9), (setting, trial)
            assert got.mINP == pytest.approx(100 * mINP, abs=1e-9), (setting, trial)
            np.testing.assert_allclose(got.cmc, 100 * cmc, rtol=0, atol=1e-9)
    assert info['ir2vis'].n_query == len(nir_all)
    assert info['vis2ir'].n_query == len(official_draw(llcm_root, NIR_CAMS, 0))
    assert info['vis2ir'].n_gallery == (len(vis_all),) * 10
    assert info['vis2ir-conventional'].n_query == len(vis_all)
    # The swap matters: test.py's VIS->IR is not the conventional reading.
    assert results['vis2ir'].mean['mAP'] != pytest.approx(
        results['vis2ir-conventional'].mean['mAP'], abs=0.5
    )


@pytest.mark.parametrize('dev', DEVICES)
def test_tensor_features_give_the_host_results(llcm_root: Path, dev: str) -> None:
    recs = test_records('llcm', llcm_root)
    feats = _features(recs, seed=3)
    protocol = dict(directions=LLCM_SETTINGS, trials=4)
    host = evaluate('llcm', llcm_root, protocol, recs, feats)
    on_device = evaluate('llcm', llcm_root, protocol, recs, torch.from_numpy(feats).to(dev))
    for setting in LLCM_SETTINGS:
        for a, b in zip(host[setting].per_trial, on_device[setting].per_trial):
            assert a.as_dict() == pytest.approx(b.as_dict(), abs=1e-9)


def test_retrieval_lists_agree_with_the_metrics(llcm_root: Path) -> None:
    recs = test_records('llcm', llcm_root)
    feats = _features(recs, seed=5)
    results = evaluate('llcm', llcm_root, dict(directions=LLCM_SETTINGS), recs, feats)
    for direction in LLCM_SETTINGS:
        setting = retrieval_setting(
            'llcm', llcm_root, None, recs, feats, direction=direction, trial=2
        )
        ranks = setting.query_ranks()
        assert trial_metrics(ranks).as_dict() == pytest.approx(
            results[direction].per_trial[2].as_dict(), abs=1e-9
        )
        for ranked in setting.ranked(range(len(setting.query))):
            q = setting.query[ranked.query]
            shown = [setting.gallery[g] for g in ranked.gallery]
            assert not any(r.pid == q.pid and r.cam == q.cam for r in shown)  # the rule
            assert ranked.first_match == ranks.first_rank[ranked.query]
    with pytest.raises(ValueError, match='LLCM direction'):
        retrieval_setting('llcm', llcm_root, None, recs, feats, direction='v2t')
