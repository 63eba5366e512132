"""Writer of a synthetic RegDB in the released layout (``Visible/<id>/*.bmp``,
``Thermal/<id>/*.bmp``, ``idx/``).

RegDB pairs are captured at the same instant by a dual camera, so image k of an id has the same pose
in both modalities (the thermal camera sits slightly apart: its framing differs a little). Each of
the 10 trials splits the ids at random into halves: train labels are 0..n_train-1 and test labels
0..n_test-1, both by ascending folder id, the same in the visible and the thermal file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from . import seeding
from .render import Camera, Person, check_gap, person_labels, render, sample_person, sample_pose
from .seeding import stream

IMAGES_PER_ID = 10
N_TRIALS = 10
MIN_IDS = 2

# fmt: off
VISIBLE = Camera(size=(128, 64), flip=False, shear=0.0, scale=0.9, views=(0.5, 0.5, 0.0), gain=1.0,
                 cast=(1.0, 1.0, 1.0), gamma=1.0, blur=0.5, noise=0.015, bg_rgb=(0.5, 0.5, 0.48),
                 bg_ir=0.0, floor=0.86, clutter=1)
THERMAL = Camera(size=(128, 64), flip=False, shear=0.03, scale=0.88, views=(0.5, 0.5, 0.0),
                 gain=1.0, cast=(1.0, 1.0, 1.0), gamma=1.0, blur=1.3, noise=0.02, bg_rgb=(0, 0, 0),
                 bg_ir=0.2, floor=0.86, clutter=0)
# fmt: on


def file_names(pid: int, seed: int) -> list[tuple[str, str]]:
    """(visible, thermal) file names of ``pid``'s images, e.g. ``male_front_v_00007_1.bmp``."""
    meta = stream(seed, seeding.REGDB, seeding.META, pid)
    sex = 'male' if meta.random() < 0.6 else 'female'
    names = []
    for k in range(1, IMAGES_PER_ID + 1):
        view = _pose(seed, pid, k).view
        serial = (pid - 1) * IMAGES_PER_ID + k
        names.append(
            (f'{sex}_{view}_v_{serial:05d}_{pid}.bmp', f'{sex}_{view}_t_{serial:05d}_{pid}.bmp')
        )
    return names


def _pose(seed: int, pid: int, k: int):
    return sample_pose(stream(seed, seeding.REGDB, seeding.IMAGE, pid, k, 0), VISIBLE)


def render_pair(
    seed: int,
    pid: int,
    k: int,
    person: Person | None = None,
    gap: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Visible and thermal image ``k`` (1-based) of ``pid``, same instant, same pose."""
    if person is None:
        person = sample_person(stream(seed, seeding.REGDB, seeding.PERSON, pid), gap)
    pose = _pose(seed, pid, k)
    vis = render(
        person, pose, VISIBLE, 'visible', stream(seed, seeding.REGDB, seeding.IMAGE, pid, k, 1)
    )
    th = render(
        person,
        pose,
        THERMAL,
        'thermal',
        stream(seed, seeding.REGDB, seeding.IMAGE, pid, k, 2),
        labels=person_labels(person, pose, THERMAL),
    )
    return vis, th


def write_ids_range(root: Path, gap: float, seed: int, pids: list[int]) -> None:
    """Render and save every image of ``pids`` (any subset, any order: the result is the same)."""
    for pid in pids:
        person = sample_person(stream(seed, seeding.REGDB, seeding.PERSON, pid), gap)
        vdir, tdir = root / 'Visible' / str(pid), root / 'Thermal' / str(pid)
        vdir.mkdir()
        tdir.mkdir()
        for k, (vname, tname) in enumerate(file_names(pid, seed), start=1):
            vis, th = render_pair(seed, pid, k, person)
            Image.fromarray(vis).save(vdir / vname)
            Image.fromarray(th).save(tdir / tname)


def split(ids: int, seed: int, trial: int) -> tuple[list[int], list[int]]:
    """(train ids, test ids) of ``trial`` (1..10), each ascending."""
    perm = stream(seed, seeding.REGDB, seeding.SPLIT, trial).permutation(ids) + 1
    n_train = ids // 2
    return sorted(int(i) for i in perm[:n_train]), sorted(int(i) for i in perm[n_train:])


def _idx_lines(
    folder: str, pids: list[int], names: dict[int, list[tuple[str, str]]], which: int
) -> str:
    lines = [
        f'{folder}/{pid}/{pair[which]} {label}'
        for label, pid in enumerate(pids)
        for pair in names[pid]
    ]
    return '\n'.join(lines) + '\n'


def write(root: Path, ids: int, seed: int, workers: int = 1, gap: float = 1.0) -> dict:
    """Write the whole dataset under ``root`` (which must exist and be empty); return its
    statistics."""
    if ids < MIN_IDS:
        raise ValueError(f'synthetic RegDB needs ids >= {MIN_IDS} (got {ids}): pass a larger ids')
    (root / 'Visible').mkdir()
    (root / 'Thermal').mkdir()
    from .parallel import run_chunks

    run_chunks(write_ids_range, list(range(1, ids + 1)), workers, root, check_gap(gap), seed)

    names = {pid: file_names(pid, seed) for pid in range(1, ids + 1)}
    idx = root / 'idx'
    idx.mkdir()
    for t in range(1, N_TRIALS + 1):
        train, test = split(ids, seed, t)
        for part, pids in (('train', train), ('test', test)):
            (idx / f'{part}_visible_{t}.txt').write_text(_idx_lines('Visible', pids, names, 0))
            (idx / f'{part}_thermal_{t}.txt').write_text(_idx_lines('Thermal', pids, names, 1))
    train, test = split(ids, seed, 1)
    return {
        'ids': ids,
        'images_per_id_and_modality': IMAGES_PER_ID,
        'visible_images': ids * IMAGES_PER_ID,
        'thermal_images': ids * IMAGES_PER_ID,
        'train_ids_per_trial': len(train),
        'test_ids_per_trial': len(test),
        'trials': N_TRIALS,
    }
