"""Writer of a synthetic LLCM in the layout the official code reads (``idx/``, ``vis/``, ``nir/``,
``test_vis/cam<K>/<pid>``, ``test_nir/cam<K>/<pid>``; see :mod:`protocols.datasets.llcm`).

LLCM's nine cameras each film in colour or, at low light, in near-infrared. Here an identity is
seen by two to five of the nine cameras, in colour, in near-infrared or both, two to five images
each. A third of the identities (as 351 of 1,064 in the release) are test identities; the others
are training identities with labels 0..C-1 by ascending identity in both training lists. Every test
identity has a colour and a near-infrared image in different cameras, so every probe of both
directions has a correct match once its own camera's images are removed, and none has a
near-infrared image in camera 3 (the official test list has no infrared camera 3).

File names follow the release, ``<pid:04d>_c0<K>_s<serial>_f<frame>_<vis|nir>.jpg``; training
images are ``vis/<pid:04d>/...`` and ``nir/<pid:04d>/...``. The test lists ``idx/test_vis.txt`` and
``idx/test_nir.txt`` of the release (read only by its visualisation scripts, their label column
undocumented) are not written.

``low_light`` in [0, 1] is LLCM's character: each colour image is taken at a light level drawn per
image, scaled by its camera's darkness and by ``low_light``; less light means a darker image (gain
down to 15 %), more sensor noise and washed-out colour (saturation down to 20 %). Near-infrared
images, lit by the cameras' own illuminators, are not affected. See docs/synthetic-data.md for
what it does to a trained model (at the demo size: nothing measurable).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from ..base import Modality
from . import seeding
from .render import LUMA, Camera, check_gap, render, sample_person, sample_pose
from .seeding import stream

CAMS = tuple(range(1, 10))
TEST_INFRARED_CAMS = (1, 2, 4, 5, 6, 7, 8, 9)  # DEEN/data_manager.py:73-74
MIN_IDS = 6
TEST_SHARE = 1 / 3  # 351 of 1,064 identities are test identities in the release
JPEG_QUALITY = 90
DEFAULT_LOW_LIGHT = 0.5
MODALITY_NAMES = {Modality.VISIBLE: 'vis', Modality.INFRARED: 'nir'}
# At light level l (low_light x camera darkness x a per-image draw in [0.6, 1]):
# gain x (1 - 0.85 l), noise + 0.12 l, saturation x (1 - 0.8 l).
_GAIN_LOSS, _NOISE_GAIN, _SATURATION_LOSS = 0.85, 0.12, 0.8

# fmt: off
# Per camera: (H, W), flip, shear, scale, views (front, back, side), colour background, floor,
# clutter, darkness (how much of low_light its scene gets).
_CAMERA_TABLE = {
    1: ((128, 64), False, 0.0, 0.88, (0.5, 0.3, 0.2), (0.5, 0.48, 0.45), 0.85, 2, 0.6),
    2: ((128, 64), True, 0.06, 0.84, (0.3, 0.5, 0.2), (0.42, 0.45, 0.5), 0.82, 3, 0.8),
    3: ((124, 62), False, -0.05, 0.9, (0.2, 0.2, 0.6), (0.55, 0.55, 0.52), 0.78, 2, 1.0),
    4: ((132, 66), True, 0.04, 0.86, (0.4, 0.4, 0.2), (0.35, 0.45, 0.3), 0.8, 4, 0.9),
    5: ((128, 60), False, 0.08, 0.82, (0.35, 0.35, 0.3), (0.45, 0.4, 0.38), 0.84, 1, 0.7),
    6: ((120, 60), True, -0.06, 0.9, (0.25, 0.25, 0.5), (0.6, 0.58, 0.55), 0.76, 3, 1.0),
    7: ((136, 68), False, 0.0, 0.84, (0.45, 0.45, 0.1), (0.38, 0.4, 0.44), 0.8, 2, 0.85),
    8: ((128, 64), True, 0.05, 0.88, (0.3, 0.3, 0.4), (0.5, 0.52, 0.46), 0.83, 4, 0.75),
    9: ((124, 64), False, -0.03, 0.86, (0.4, 0.3, 0.3), (0.44, 0.5, 0.5), 0.81, 2, 0.95),
}
# fmt: on
DARKNESS = {cam: row[8] for cam, row in _CAMERA_TABLE.items()}


def _cameras() -> dict[tuple[int, Modality], Camera]:
    out = {}
    for cam, (size, flip, shear, scale, views, bg, floor, clutter, _) in _CAMERA_TABLE.items():
        common = dict(size=size, flip=flip, shear=shear, scale=scale, views=views, floor=floor)
        out[(cam, Modality.VISIBLE)] = Camera(
            **common, gain=1.0, cast=(1.0, 1.0, 1.0), gamma=1.0, blur=0.5, noise=0.015,
            bg_rgb=bg, bg_ir=0.0, clutter=clutter,
        )  # fmt: skip
        # The same camera switched to near-infrared: grey, softer, noisier, its own illuminator.
        out[(cam, Modality.INFRARED)] = Camera(
            **common, gain=1.0, cast=(1.0, 1.0, 1.0), gamma=1.1, blur=0.9, noise=0.03,
            bg_rgb=(0.0, 0.0, 0.0), bg_ir=0.25 + 0.02 * cam, clutter=max(1, clutter - 1),
        )  # fmt: skip
    return out


CAMERAS = _cameras()


def check_low_light(value: float) -> float:
    """``low_light`` as a float in [0, 1], or a ValueError saying what it means."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0.0 <= float(value) <= 1.0
    ):
        raise ValueError(
            f'low_light must be a number in [0, 1] (0: every colour image well lit, 1: the '
            f'darkest, noisiest, most washed-out colour images), got {value!r}'
        )
    return float(value)


@dataclass(frozen=True)
class LlcmPlan:
    """Everything about the dataset except pixels."""

    ids: int
    test: tuple[int, ...]
    train: tuple[int, ...]
    # (pid, cam, modality) -> number of images; absent triples are not listed
    counts: dict[tuple[int, int, Modality], int]
    gap: float = 1.0
    low_light: float = DEFAULT_LOW_LIGHT

    def label(self, pid: int) -> int:
        """Training label of a training identity (0..C-1 by ascending identity)."""
        return self.train.index(pid)


def plan(ids: int, seed: int, gap: float = 1.0, low_light: float = DEFAULT_LOW_LIGHT) -> LlcmPlan:
    """Decide the test identities, which camera sees whom in which modality, and how many images."""
    if ids < MIN_IDS:
        raise ValueError(f'synthetic LLCM needs ids >= {MIN_IDS} (got {ids}): pass a larger ids')
    n_test = max(2, round(TEST_SHARE * ids))
    split_rng = stream(seed, seeding.LLCM, seeding.SPLIT)
    test = tuple(sorted(int(i) for i in split_rng.choice(np.arange(1, ids + 1), n_test, False)))
    train = tuple(i for i in range(1, ids + 1) if i not in set(test))
    counts: dict[tuple[int, int, Modality], int] = {}
    for pid in range(1, ids + 1):
        r = stream(seed, seeding.LLCM, seeding.PRESENCE, pid)
        is_test = pid in test
        cams = sorted(int(c) for c in r.choice(CAMS, int(r.integers(2, 6)), replace=False))
        draws = r.random((len(cams), 2))  # always drawn: presence never shifts another stream
        vis = {c for c, d in zip(cams, draws) if d[0] < 0.75}
        nir = {c for c, d in zip(cams, draws) if d[1] < 0.75 or d[0] >= 0.75}
        if is_test and 3 in nir:  # the official test list has no infrared camera 3
            nir.discard(3)
            vis.add(3)
        infrared_cams = TEST_INFRARED_CAMS if is_test else CAMS
        if not vis:
            vis.add(cams[0])
        if not nir:
            nir.add(next(c for c in (*reversed(cams), *infrared_cams) if c in infrared_cams))
        # Every probe of either direction keeps a correct match once its own camera is removed:
        # one modality seen by one camera only must have the other modality elsewhere.
        if len(vis) == 1 and vis <= nir:
            vis.add(next(c for c in (*cams, *CAMS) if c not in vis))
        if len(nir) == 1 and nir <= vis:
            nir.add(next(c for c in (*cams, *infrared_cams) if c not in nir and c in infrared_cams))
        for modality, present in ((Modality.VISIBLE, vis), (Modality.INFRARED, nir)):
            for cam in sorted(present):
                n = stream(seed, seeding.LLCM, seeding.COUNT, pid, cam, int(modality)).integers(
                    2, 6
                )
                counts[(pid, cam, modality)] = int(n)
    return LlcmPlan(ids, test, train, counts, check_gap(gap), check_low_light(low_light))


def file_name(pid: int, cam: int, modality: Modality, k: int) -> str:
    """The release's naming: ``<pid:04d>_c0<K>_s<serial>_f<frame>_<vis|nir>.jpg``."""
    serial = 100000 + 1000 * cam + (pid % 1000)
    return f'{pid:04d}_c0{cam}_s{serial}_f{k:05d}_{MODALITY_NAMES[modality]}.jpg'


def image_path(p: LlcmPlan, pid: int, cam: int, modality: Modality, k: int) -> str:
    """Where image ``k`` (1-based) of (pid, cam, modality) lives, relative to the root."""
    name = file_name(pid, cam, modality, k)
    folder = MODALITY_NAMES[modality]
    if pid in p.test:
        return f'test_{folder}/cam{cam}/{pid:04d}/{name}'
    return f'{folder}/{pid:04d}/{name}'


def render_image(
    seed: int, p: LlcmPlan, person, pid: int, cam: int, modality: Modality, k: int
) -> np.ndarray:
    """Image ``k`` (1-based) of ``pid`` in camera ``cam`` and ``modality``."""
    r = stream(seed, seeding.LLCM, seeding.IMAGE, pid, cam, int(modality), k)
    camera = CAMERAS[(cam, modality)]
    pose = sample_pose(r, camera)
    level = p.low_light * DARKNESS[cam] * r.uniform(0.6, 1.0)  # drawn whatever the knob
    if modality == Modality.INFRARED:
        return render(person, pose, camera, 'nir', r)
    dark = replace(
        camera,
        gain=camera.gain * (1.0 - _GAIN_LOSS * level),
        noise=camera.noise + _NOISE_GAIN * level,
    )
    img = render(person, pose, dark, 'visible', r).astype(np.float32)
    grey = (img @ LUMA)[..., None]
    img = grey + (img - grey) * (1.0 - _SATURATION_LOSS * level)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def write_ids_range(root: Path, p: LlcmPlan, seed: int, pids: list[int]) -> None:
    """Render and save every image of ``pids`` (any subset, any order: the result is the same)."""
    for pid in pids:
        person = sample_person(stream(seed, seeding.LLCM, seeding.PERSON, pid), p.gap)
        for (q, cam, modality), n in sorted(p.counts.items()):
            if q != pid:
                continue
            for k in range(1, n + 1):
                path = root / image_path(p, pid, cam, modality, k)
                path.parent.mkdir(parents=True, exist_ok=True)
                img = render_image(seed, p, person, pid, cam, modality, k)
                Image.fromarray(img).save(path, quality=JPEG_QUALITY)


def train_lines(p: LlcmPlan, modality: Modality) -> list[str]:
    """``idx/train_<vis|nir>.txt``: one ``<path> <label>`` line per training image."""
    return [
        f'{image_path(p, pid, cam, m, k)} {p.label(pid)}'
        for (pid, cam, m), n in sorted(p.counts.items())
        if m == modality and pid in p.train
        for k in range(1, n + 1)
    ]


def write(
    root: Path,
    ids: int,
    seed: int,
    workers: int = 1,
    gap: float = 1.0,
    low_light: float = DEFAULT_LOW_LIGHT,
) -> dict:
    """Write the whole dataset under ``root`` (which must exist and be empty); return its
    statistics."""
    p = plan(ids, seed, gap, low_light)
    for top in ('vis', 'nir', 'test_vis', 'test_nir'):
        (root / top).mkdir()
    from .parallel import run_chunks

    run_chunks(write_ids_range, list(range(1, ids + 1)), workers, root, p, seed)
    idx = root / 'idx'
    idx.mkdir()
    for modality in (Modality.VISIBLE, Modality.INFRARED):
        lines = train_lines(p, modality)
        (idx / f'train_{MODALITY_NAMES[modality]}.txt').write_text('\n'.join(lines) + '\n')
    (idx / 'test_id.txt').write_text(','.join(str(i) for i in p.test) + '\n')
    return stats(p)


def stats(p: LlcmPlan) -> dict:
    def images(pids: tuple[int, ...], modality: Modality) -> int:
        return sum(n for (pid, _, m), n in p.counts.items() if m == modality and pid in pids)

    return {
        'ids': p.ids,
        'train_ids': len(p.train),
        'test_ids': len(p.test),
        'train_visible_images': images(p.train, Modality.VISIBLE),
        'train_infrared_images': images(p.train, Modality.INFRARED),
        'test_visible_images': images(p.test, Modality.VISIBLE),
        'test_infrared_images': images(p.test, Modality.INFRARED),
        'low_light': p.low_light,
    }
