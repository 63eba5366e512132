"""Test trials: SYSU-MM01 gallery draws (official ``rand_perm_cam.mat`` or AGW's seeded draw), RegDB
splits, LLCM draws (DEEN's seeded draw, one image per identity and camera).

A SYSU gallery is an array of integer indices into ``SYSUMM01.gallery_candidates()`` (every visible
test image), so features are extracted once and each trial only selects columns. Cameras stay the
real ones; the cam3-query/cam2-gallery rule is applied by ``protocols.metrics``.
"""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.io import loadmat

from protocols.datasets.base import DatasetLayoutError, ImageRecord, Modality
from protocols.datasets.llcm import CAMERAS as LLCM_CAMERAS
from protocols.datasets.llcm import LLCM
from protocols.datasets.regdb import RegDB
from protocols.datasets.sysu import GALLERY_CAMS, SYSUMM01

SYSU_MODES = tuple(GALLERY_CAMS)  # ('all', 'indoor')
SYSU_SHOTS = {1: 'single', 10: 'multi'}  # images per (id, camera) in a gallery
SYSU_SAMPLERS = ('official', 'seeded')
SYSU_NUM_TRIALS = 10
REGDB_DIRECTIONS = ('v2t', 't2v')  # visible query -> thermal gallery, and the reverse
# LLCM (ZYK100/LLCM DEEN/test.py:60, "[1, 2]: IR to VIS; [2, 1]: VIS to IR"), as test.py computes
# them: 'ir2vis' every infrared test image ranks one sampled visible image per (id, camera);
# 'vis2ir' one sampled infrared image per (id, camera) ranks every visible test image (test.py
# draws the infrared side but swaps the roles in its eval_llcm call, test.py:222-234). The papers'
# VIS->IR numbers were made that way.
LLCM_DIRECTIONS = ('ir2vis', 'vis2ir')
# Not the papers' computation, offered for comparison only (its records are non-comparable):
# every visible test image ranks one sampled infrared image per (id, camera), as AGW/train.py's
# periodic test does with test_mode [2, 1].
LLCM_CONVENTIONAL = 'vis2ir-conventional'
LLCM_SETTINGS = (*LLCM_DIRECTIONS, LLCM_CONVENTIONAL)
LLCM_NUM_TRIALS = 10
# Who ranks whom in each LLCM setting, for headings and captions.
LLCM_SETTING_TEXT = {
    'ir2vis': 'every infrared test image ranks one sampled visible image per (id, camera)',
    'vis2ir': 'one sampled infrared image per (id, camera) ranks every visible test image, as '
    "DEEN's test.py computes VIS->IR",
    LLCM_CONVENTIONAL: 'every visible test image ranks one sampled infrared image per (id, '
    "camera); not DEEN's VIS->IR, not comparable with published numbers",
}

_PERM_SOURCE = (
    'copy it from the official repository https://github.com/wuancong/SYSU-MM01 '
    '(evaluation/data_split/rand_perm_cam.mat) into <root>/exp/, or use sampler="seeded"'
)


def sysu_setting(mode: str, shots: int) -> str:
    """Setting name used in results tables, e.g. ``all-single``, ``indoor-multi``."""
    if mode not in SYSU_MODES:
        raise ValueError(f'SYSU mode must be one of {SYSU_MODES}, got {mode!r}')
    if shots not in SYSU_SHOTS:
        raise ValueError(f'SYSU shots must be one of {tuple(SYSU_SHOTS)}, got {shots!r}')
    return f'{mode}-{SYSU_SHOTS[shots]}'


# --------------------------------------------------------------------------------------------------
# Official sampler: rand_perm_cam.mat


def load_rand_perm(path: str | Path) -> dict[tuple[int, int], np.ndarray]:
    """``(cam, pid) -> (trials x n)`` int matrix of 1-based image numbers; empty cells are left
    out."""
    path = Path(path)
    if not path.is_file():
        raise DatasetLayoutError(
            f'the official SYSU-MM01 gallery permutations {path} are missing; {_PERM_SOURCE}'
        )
    try:
        raw = loadmat(str(path))
    except Exception as err:  # scipy raises several types for corrupt files
        raise DatasetLayoutError(
            f'cannot read {path} as a MATLAB file: {err}; {_PERM_SOURCE}'
        ) from None
    if 'rand_perm_cam' not in raw:
        found = sorted(k for k in raw if not k.startswith('__'))
        raise DatasetLayoutError(
            f'{path} has no variable rand_perm_cam (found {found}); {_PERM_SOURCE}'
        )
    cams = np.asarray(raw['rand_perm_cam']).ravel()
    if cams.dtype != object or cams.size != 6:
        raise DatasetLayoutError(
            f'{path}: rand_perm_cam must be a cell array of 6 cameras, got shape '
            f'{np.asarray(raw["rand_perm_cam"]).shape}; {_PERM_SOURCE}'
        )
    perm = {}
    for cam, cell in enumerate(cams, start=1):
        ids = np.asarray(cell).ravel()
        if ids.dtype != object:
            raise DatasetLayoutError(
                f'{path}: rand_perm_cam{{{cam}}} must be a cell array (one matrix per '
                f'person id); {_PERM_SOURCE}'
            )
        for pid, matrix in enumerate(ids, start=1):
            matrix = np.asarray(matrix)
            if matrix.size == 0:
                continue
            perm[(cam, pid)] = np.atleast_2d(matrix).astype(np.int64)
    return perm


def _number(name: str) -> int | None:
    stem = name.rsplit('/', 1)[-1].rsplit('.', 1)[0]
    return int(stem) if stem.isdigit() else None


def official_gallery(
    dataset: SYSUMM01,
    perm: dict[tuple[int, int], np.ndarray],
    mode: str,
    shots: int,
    trial: int,
    candidates: Sequence[ImageRecord] | None = None,
) -> np.ndarray:
    """Row ``trial`` (0-based) of rand_perm_cam, first ``shots`` entries, 1-based numbers used as
    file names.

    Order is the MATLAB one: gallery camera, then ascending test id, then permutation order.
    """
    sysu_setting(mode, shots)
    candidates = dataset.gallery_candidates() if candidates is None else candidates
    where = {(r.cam, r.pid, _number(r.path)): i for i, r in enumerate(candidates)}
    chosen = []
    for cam in GALLERY_CAMS[mode]:
        for pid in sorted(dataset.test_ids):
            matrix = perm.get((cam, pid))
            if matrix is None:
                continue
            if trial >= matrix.shape[0]:
                raise DatasetLayoutError(
                    f'{dataset.rand_perm_path}: cam{cam} id {pid} has {matrix.shape[0]} rows, '
                    f'trial {trial} needs row {trial + 1}; {_PERM_SOURCE}'
                )
            for number in matrix[trial, :shots]:
                index = where.get((cam, pid, int(number)))
                if index is None:
                    raise DatasetLayoutError(
                        f'{dataset.rand_perm_path} selects image {int(number)} of '
                        f'cam{cam}/{pid:04d} (trial {trial}) but '
                        f'{dataset.root}/cam{cam}/{pid:04d}/{int(number):04d}.jpg is not in the '
                        'dataset; expected the image folders of the official release; fix: restore '
                        'the images or use sampler="seeded"'
                    )
                chosen.append(index)
    return np.asarray(chosen, dtype=np.int64)


# --------------------------------------------------------------------------------------------------
# Seeded sampler: mangye16/Cross-Modal-Re-ID-baseline (AGW) process_gallery_sysu


def seeded_gallery(
    dataset: SYSUMM01,
    mode: str,
    shots: int,
    trial: int,
    candidates: Sequence[ImageRecord] | None = None,
) -> np.ndarray:
    """AGW's draw: ``random.seed(trial)``, then one ``choice`` per existing (id, camera) in id-major
    order.

    A private ``random.Random(trial)`` gives the same Mersenne Twister stream without touching the
    global state. The listing is the raw folder content, sorted, non-image files included, exactly
    as AGW lists it. Multi-shot uses ``sample(files, 10)``: a harness extension (AGW has no
    multi-shot code).
    """
    sysu_setting(mode, shots)
    candidates = dataset.gallery_candidates() if candidates is None else candidates
    where = {r.path: i for i, r in enumerate(candidates)}
    rng = random.Random(trial)
    chosen = []
    warned = False
    for pid in sorted(dataset.test_ids):
        for cam in GALLERY_CAMS[mode]:
            folder = dataset.id_dirs.get((cam, pid))
            if folder is None:
                continue
            names = sorted(os.listdir(dataset.root / f'cam{cam}' / folder))
            prefix = f'cam{cam}/{folder}/'
            stray = [prefix + n for n in names if prefix + n not in where]
            if stray and not warned:
                warned = True
                warnings.warn(
                    f'non-image file(s) in SYSU-MM01 test image folders (e.g. {stray[0]}); the '
                    'seeded (AGW) draw lists them as AGW does, which changes which images are '
                    'drawn',
                    stacklevel=2,
                )
            if len(names) < shots or not names:
                raise DatasetLayoutError(
                    f'{dataset.root / prefix} holds {len(names)} file(s), the seeded sampler '
                    f'needs {shots}; fix: restore the images of this folder'
                )
            picks = [rng.choice(names)] if shots == 1 else rng.sample(names, shots)
            for name in picks:
                if prefix + name not in where:
                    raise DatasetLayoutError(
                        f'the seeded (AGW) draw for trial {trial} picked '
                        f'{dataset.root / prefix / name}, which is not an image; AGW lists every '
                        'file of a folder, so extra files change and break its draw; fix: delete '
                        'non-image files from the image folders'
                    )
                chosen.append(where[prefix + name])
    return np.asarray(chosen, dtype=np.int64)


def sysu_galleries(
    dataset: SYSUMM01,
    mode: str,
    shots: int,
    sampler: str = 'official',
    trials: int = SYSU_NUM_TRIALS,
    perm: dict | None = None,
    candidates: Sequence[ImageRecord] | None = None,
) -> list[np.ndarray]:
    """Gallery index arrays (into ``candidates``, default ``dataset.gallery_candidates()``; it must
    hold the images of the mode's gallery cameras) for trials 0..trials-1."""
    if sampler not in SYSU_SAMPLERS:
        raise ValueError(f'SYSU sampler must be one of {SYSU_SAMPLERS}, got {sampler!r}')
    if (
        isinstance(trials, bool)
        or not isinstance(trials, (int, np.integer))
        or not 1 <= trials <= SYSU_NUM_TRIALS
    ):
        raise ValueError(f'SYSU trials must be an integer in 1..{SYSU_NUM_TRIALS}, got {trials!r}')
    candidates = dataset.gallery_candidates() if candidates is None else candidates
    if sampler == 'official':
        perm = load_rand_perm(dataset.rand_perm_path) if perm is None else perm
        return [official_gallery(dataset, perm, mode, shots, t, candidates) for t in range(trials)]
    return [seeded_gallery(dataset, mode, shots, t, candidates) for t in range(trials)]


# --------------------------------------------------------------------------------------------------
# RegDB


def regdb_query_gallery(
    dataset: RegDB, trial: int, direction: str
) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """Query and gallery of split ``trial`` (1..10): all test images of one modality against the
    other."""
    if direction not in REGDB_DIRECTIONS:
        raise ValueError(f'RegDB direction must be one of {REGDB_DIRECTIONS}, got {direction!r}')
    visible = dataset.split_records(trial, 'test', Modality.VISIBLE)
    thermal = dataset.split_records(trial, 'test', Modality.INFRARED)
    return (visible, thermal) if direction == 'v2t' else (thermal, visible)


# --------------------------------------------------------------------------------------------------
# LLCM: ZYK100/LLCM@886e27c DEEN/data_manager.py process_gallery_llcm (lines 102-132)


def llcm_draw(
    dataset: LLCM,
    modality: Modality,
    trial: int,
    candidates: Sequence[ImageRecord] | None = None,
) -> np.ndarray:
    """DEEN's draw of trial ``trial``: ``random.seed(trial)``, then one ``random.choice`` per test
    folder of ``modality`` in the official order (identities as sorted 4-digit names, then the
    cameras of the official list), over the folder's listing sorted by name.

    Returns indices into ``candidates`` (default: ``dataset.test_images(modality)``). A private
    ``random.Random(trial)`` gives the same Mersenne Twister stream without touching the global
    state. The listing is the raw folder content, non-image files included, exactly as DEEN lists
    it: a drawn non-image file is an error naming it.
    """
    modality = Modality(modality)
    candidates = dataset.test_images(modality) if candidates is None else candidates
    where = {r.path: i for i, r in enumerate(candidates)}
    rng = random.Random(trial)
    chosen = []
    warned = False
    for folder in sorted(f'{pid:04d}' for pid in dataset.test_ids):
        for cam in LLCM_CAMERAS[modality]:
            rel = dataset.test_folder(modality, cam, int(folder))
            if rel is None:
                continue
            names = sorted(os.listdir(dataset.root / rel))
            if not names:
                raise DatasetLayoutError(
                    f'{dataset.root / rel} is empty now; the draw needs its images; fix: restore '
                    'them'
                )
            stray = [n for n in names if f'{rel}/{n}' not in where]
            if stray and not warned:
                warned = True
                warnings.warn(
                    f'non-image file(s) in LLCM test image folders (e.g. {rel}/{stray[0]}); the '
                    "draw lists them as DEEN's code does, which changes which images are drawn",
                    stacklevel=2,
                )
            name = rng.choice(names)
            if f'{rel}/{name}' not in where:
                raise DatasetLayoutError(
                    f'the LLCM draw of trial {trial} picked {dataset.root / rel / name}, which is '
                    "not a test image; DEEN's code lists every file of a folder, so extra files "
                    'change and break its draw; fix: delete non-image files from the test folders'
                )
            chosen.append(where[f'{rel}/{name}'])
    return np.asarray(chosen, dtype=np.int64)


def llcm_draws(
    dataset: LLCM, modality: Modality, trials: int = LLCM_NUM_TRIALS
) -> list[np.ndarray]:
    """:func:`llcm_draw` of trials 0..trials-1 (test.py loops ``for trial in range(10)``)."""
    if (
        isinstance(trials, bool)
        or not isinstance(trials, (int, np.integer))
        or not 1 <= trials <= LLCM_NUM_TRIALS
    ):
        raise ValueError(f'LLCM trials must be an integer in 1..{LLCM_NUM_TRIALS}, got {trials!r}')
    candidates = dataset.test_images(modality)
    return [llcm_draw(dataset, modality, t, candidates) for t in range(trials)]
