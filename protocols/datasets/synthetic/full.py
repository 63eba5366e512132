"""Real-size stand-ins: SYSU-MM01 and RegDB with the releases' identities, image counts and splits.

They exist to rehearse a full run (data checks, decoding, the cache, one training step at the
real batch size, the whole evaluation) where the real data are not at hand; they are not meant to
be learnable. What is real and what is drawn (docs/synthetic-data.md, "Real-size stand-ins"):

- SYSU-MM01, real: the camera folders, every (camera, id) and its exact number of images (the
  cells of the official ``rand_perm_cam.mat``, see :data:`protocols.counts.SYSU_IMAGES_PER_ID`),
  the train and test id lists (official ``train_id.mat``, ``test_id.mat``), the 491 available ids,
  and the shape of ``rand_perm_cam`` (6 cameras; 333 or 533 id cells; uint8 10 x n matrices).
  Inferred: the 99 val ids. Drawn: the pixels, each (camera, id)'s crop size around a chosen
  per-camera size, and the permutations inside ``rand_perm_cam`` (seeded).
- RegDB, real: 412 ids x 10 visible + 10 thermal images, ten 206/206 splits in ``idx/``. Drawn:
  the pixels and which ids each split trains on. Size: 64 x 128 pixels, chosen.

Speed: each (camera, id) renders :data:`BASES` distinct images with the procedural renderer; its
other images are cheap variations of those (mirror, shift, light, sensor noise). Every image has
its own random stream, so the bytes depend only on the seed, never on the number of processes.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from protocols import counts

from . import regdb, seeding, sysu
from .parallel import run_chunks
from .render import check_gap, render, sample_person, sample_pose
from .seeding import stream

BASES = 2  # distinct renders per (camera, id)
# Crop size (height, width) each camera's crops vary around (+-12.5 % in height, same aspect). The
# release states no image size (README, dataset page, the papers we could read); these are chosen,
# in the release's example figure's aspect of about 1 : 2.5 (img/example.jpg of wuancong/SYSU-MM01):
# larger for the indoor Kinect cameras 1 and 2, smaller for the outdoor surveillance cameras.
SYSU_CROP = {
    1: (384, 160),
    2: (384, 160),
    3: (320, 128),
    4: (288, 112),
    5: (320, 128),
    6: (320, 128),
}
# RegDB crops are small: 64 x 128 (width x height) is the size commonly quoted for the dataset; we
# found no primary source we could read, so this too is chosen. The demo writer already renders it.
REGDB_SIZE = regdb.VISIBLE.size
REGDB_IDS = counts.REGDB_IDS


def check_scale(scale: float) -> float:
    """``scale`` as a float in (0, 1], or a ValueError saying what it means."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale <= 1:
        raise ValueError(
            f"scale must be a number in (0, 1]: the fraction of the release's identities a "
            f'real-size stand-in keeps (1: all of them), got {scale!r}'
        )
    return float(scale)


def _spread(ids: list[int], scale: float) -> list[int]:
    """``round(scale * len(ids))`` (at least one) ids spread evenly over ``ids``."""
    if scale >= 1 or not ids:
        return list(ids)
    keep = max(1, round(scale * len(ids)))
    return [ids[int(i)] for i in np.unique(np.linspace(0, len(ids) - 1, keep).round())]


def sysu_plan(scale: float = 1.0, gap: float = 1.0) -> sysu.SysuPlan:
    """The release's SYSU-MM01, or at ``scale`` < 1 an even subset of each kind of id (train, val,
    test seen indoors, test not seen indoors, ids in no list), each with its real image counts."""
    scale = check_scale(scale)
    cams = sorted(counts.SYSU_IMAGES_PER_ID)
    n_ids = max(len(c) for c in counts.SYSU_IMAGES_PER_ID.values())
    seen = [p for p in range(1, n_ids + 1) if any(counts.sysu_images(c, p) for c in cams)]
    listed = set(counts.SYSU_AVAILABLE_IDS)
    test = sorted(counts.SYSU_TEST_IDS)
    indoor = [p for p in test if counts.sysu_images(1, p)]
    keep_test = sorted(
        _spread(indoor, scale) + _spread([p for p in test if p not in indoor], scale)
    )
    keep_train = _spread(sorted(counts.SYSU_TRAIN_IDS), scale)
    keep_val = _spread(sorted(counts.SYSU_VAL_IDS), scale)
    unlisted = _spread([p for p in seen if p not in listed], scale)
    kept = set(keep_train) | set(keep_val) | set(keep_test) | set(unlisted)
    return sysu.SysuPlan(
        ids=n_ids,
        limited_max_id=min(len(c) for c in counts.SYSU_IMAGES_PER_ID.values()),
        train=tuple(keep_train),
        val=tuple(keep_val),
        test=tuple(keep_test),
        counts={
            (cam, pid): counts.sysu_images(cam, pid)
            for pid in sorted(kept)
            for cam in cams
            if counts.sysu_images(cam, pid)
        },
        gap=check_gap(gap),
    )


def crop_size(seed: int, cam: int, pid: int) -> tuple[int, int]:
    """(height, width) of every image of ``pid`` in SYSU-MM01 camera ``cam``; multiples of 4."""
    h0, w0 = SYSU_CROP[cam]
    h = 4 * round(h0 * stream(seed, seeding.SYSU, seeding.SIZE, pid, cam).uniform(0.875, 1.125) / 4)
    return h, 4 * round(h * w0 / h0 / 4)


NOISE = 8  # sensor noise: 0..NOISE grey levels added to every pixel (binomial, mean NOISE / 2)
FLICKER = 16  # each image's own brightness offset: 0..FLICKER grey levels
HEADROOM = NOISE + FLICKER  # looks stay at most 255 - HEADROOM, so adding both never overflows


@lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    # Fixed seed: part of the generator's output, like the renderer's own noise bank. Each value is
    # repeated for the three channels of a pixel: a contiguous add is far faster than broadcasting.
    grey = np.random.default_rng(2024).binomial(NOISE, 0.5, 1 << 20).astype(np.uint8)
    return np.repeat(grey, 3)


def looks(bases: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Each base as seen and mirrored, each under its own light (gain and offset)."""
    out = []
    for base in bases:
        for img in (base, np.ascontiguousarray(base[:, ::-1])):
            light = np.arange(256) * rng.uniform(0.85, 1.15) + rng.uniform(-12.0, 12.0)
            lut = np.clip(light - HEADROOM / 2, 0, 255 - HEADROOM).astype(np.uint8)
            out.append(lut[img])
    return out


def vary(look: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A new image from ``look``: shifted by a few pixels (edges repeated), its own brightness
    offset and sensor noise.

    Channels are treated alike, so an infrared (grey) image stays grey.
    """
    h, w = look.shape[:2]
    dy = int(rng.integers(-(h // 24), h // 24 + 1))
    dx = int(rng.integers(-(w // 12), w // 12 + 1))
    out = np.empty_like(look)
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = look[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    if dy > 0:
        out[:dy] = out[dy]
    elif dy < 0:
        out[h + dy :] = out[h + dy - 1]
    if dx > 0:
        out[:, :dx] = out[:, dx : dx + 1]
    elif dx < 0:
        out[:, w + dx :] = out[:, w + dx - 1 : w + dx]
    bank = _noise_bank()
    start = 3 * int(rng.integers(0, bank.size // 3 - h * w))
    out += bank[start : start + 3 * h * w].reshape(h, w, 3)
    out += np.uint8(rng.integers(0, FLICKER + 1))
    return out


def sysu_images(seed: int, plan: sysu.SysuPlan, cam: int, pid: int, person=None):
    """Yield ``(k, image)`` for every image k = 1..n of ``pid`` in ``cam``."""
    n = plan.counts.get((cam, pid), 0)
    if not n:
        return
    if person is None:
        person = sample_person(stream(seed, seeding.SYSU, seeding.PERSON, pid), plan.gap)
    camera = dataclasses.replace(sysu.CAMERAS[cam], size=crop_size(seed, cam, pid))
    modality = 'nir' if cam in sysu.INFRARED_CAMS else 'visible'
    bases = []
    for b in range(min(n, BASES)):
        r = stream(seed, seeding.SYSU, seeding.BASE, pid, cam, b)
        bases.append(render(person, sample_pose(r, camera), camera, modality, r))
    # Key 0 is the (camera, id)'s own stream; images use keys 1..n.
    variants = looks(bases, stream(seed, seeding.SYSU, seeding.VARIANT, pid, cam, 0))
    for k in range(1, n + 1):
        r = stream(seed, seeding.SYSU, seeding.VARIANT, pid, cam, k)
        yield k, vary(variants[int(r.integers(len(variants)))], r)


def _write_sysu_ids(root: Path, plan: sysu.SysuPlan, seed: int, pids: list[int]) -> None:
    for pid in pids:
        cams = [cam for cam in range(1, 7) if plan.counts.get((cam, pid))]
        if not cams:
            continue
        person = sample_person(stream(seed, seeding.SYSU, seeding.PERSON, pid), plan.gap)
        for cam in cams:
            folder = root / f'cam{cam}' / f'{pid:04d}'
            folder.mkdir(parents=True)
            for k, img in sysu_images(seed, plan, cam, pid, person):
                Image.fromarray(img).save(folder / f'{k:04d}.jpg', quality=sysu.JPEG_QUALITY)


def write_sysu(root: Path, seed: int, workers: int = 1, gap: float = 1.0, scale: float = 1.0):
    """Write the SYSU-MM01 stand-in under ``root`` (existing and empty); return its statistics."""
    plan = sysu_plan(scale, gap)
    for cam in range(1, 7):
        (root / f'cam{cam}').mkdir()
    pids = sorted({pid for _, pid in plan.counts})
    run_chunks(_write_sysu_ids, pids, workers, root, plan, seed)
    sysu.write_exp(root / 'exp', plan, seed, id_dtype=np.uint16)
    return {
        **sysu.stats(plan),
        'scale': scale,
        'crop_sizes': {f'cam{c}': SYSU_CROP[c] for c in SYSU_CROP},
    }


def regdb_ids(scale: float = 1.0) -> int:
    """Identities of the RegDB stand-in at ``scale``: all 412, or an even share (at least 2)."""
    return max(regdb.MIN_IDS, round(check_scale(scale) * REGDB_IDS))


def write_regdb(root: Path, seed: int, workers: int = 1, gap: float = 1.0, scale: float = 1.0):
    """Write the RegDB stand-in under ``root``: the demo writer at the release's 412 ids."""
    return {**regdb.write(root, regdb_ids(scale), seed, workers, gap), 'scale': scale}


WRITERS = {'sysu': write_sysu, 'regdb': write_regdb}
