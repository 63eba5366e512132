"""Writer of a synthetic SYSU-MM01 in the released layout (``cam1..cam6/PPPP/KKKK.jpg`` + ``exp/``).

Proportions follow the real release (see docs/protocols.md, "SYSU-MM01"), scaled down:

- ids 1..A (A ≈ 62.5 % of the ids, like 333 of 533) may appear in cams 1, 2 and 6; the others only
  in cams 3, 4, 5; ``rand_perm_cam`` therefore has A cells for cams 1, 2, 6 and ``ids`` cells for
  3, 4, 5;
- test ids (≈ 20 %) are drawn among 1..A, val ids (≈ 20 %) are the contiguous block after A, the
  rest is train, except ≈ 4 % "unusable" ids with no image at all or images of one modality only,
  which are in no list (``available_id`` = train ∪ val ∪ test);
- cam1 and cam2 (indoor) hold the same ids, and only some test ids: indoor search has fewer ids;
- every test id has IR images (all in cam6) and is in cam4 or cam5; each (test id, visible cam)
  holds ≥ 10 images so 10-shot galleries work; other (id, cam) pairs hold 3-7 images.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from ..base import Modality
from . import seeding
from .render import Camera, Person, check_gap, render, sample_person, sample_pose
from .seeding import stream

VISIBLE_CAMS = (1, 2, 4, 5)
INFRARED_CAMS = (3, 6)
INDOOR_CAMS = (1, 2)
LIMITED_CAMS = (1, 2, 6)  # cameras that only ever see ids 1..A
MIN_IDS = 10
N_TRIALS = 10
TEST_SHOTS = 10  # minimum images per (test id, visible cam): the multi-shot gallery size
JPEG_QUALITY = 90

# fmt: off
CAMERAS: dict[int, Camera] = {
    # indoor room 1, warm light
    1: Camera(size=(128, 64), flip=False, shear=0.0, scale=0.86, views=(0.5, 0.3, 0.2), gain=1.0,
              cast=(1.06, 1.0, 0.88), gamma=1.0, blur=0.4, noise=0.01, bg_rgb=(0.55, 0.5, 0.45),
              bg_ir=0.0, floor=0.85, clutter=2),
    # indoor room 2, cool light, seen mirrored and sheared
    2: Camera(size=(132, 66), flip=True, shear=0.08, scale=0.8, views=(0.3, 0.5, 0.2), gain=0.85,
              cast=(0.9, 1.0, 1.1), gamma=1.1, blur=0.6, noise=0.02, bg_rgb=(0.4, 0.42, 0.5),
              bg_ir=0.0, floor=0.82, clutter=3),
    # infrared in room 2 (same place as cam2), dark and noisy
    3: Camera(size=(128, 60), flip=True, shear=0.08, scale=0.8, views=(0.3, 0.5, 0.2), gain=0.85,
              cast=(1.0, 1.0, 1.0), gamma=1.2, blur=0.8, noise=0.035, bg_rgb=(0, 0, 0), bg_ir=0.15,
              floor=0.82, clutter=1),
    # outdoor gate, bright, people mostly walk across
    4: Camera(size=(120, 60), flip=False, shear=-0.06, scale=0.92, views=(0.2, 0.2, 0.6), gain=1.15,
              cast=(1.0, 1.0, 1.0), gamma=0.9, blur=0.7, noise=0.015, bg_rgb=(0.6, 0.6, 0.58),
              bg_ir=0.0, floor=0.75, clutter=3),
    # outdoor garden, green background
    5: Camera(size=(136, 68), flip=True, shear=0.04, scale=0.84, views=(0.45, 0.45, 0.1), gain=1.1,
              cast=(0.95, 1.05, 0.95), gamma=0.95, blur=0.5, noise=0.015, bg_rgb=(0.35, 0.5, 0.3),
              bg_ir=0.0, floor=0.8, clutter=4),
    # outdoor infrared passage, bright background, soft optics
    6: Camera(size=(124, 62), flip=False, shear=-0.05, scale=0.9, views=(0.35, 0.35, 0.3),
              gain=1.05, cast=(1.0, 1.0, 1.0), gamma=0.9, blur=1.0, noise=0.03, bg_rgb=(0, 0, 0),
              bg_ir=0.45, floor=0.78, clutter=2),
}
# fmt: on


@dataclass(frozen=True)
class SysuPlan:
    """Everything about the dataset except pixels."""

    ids: int
    limited_max_id: int  # A: the last id cams 1, 2, 6 can see
    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]
    counts: dict[
        tuple[int, int], int
    ]  # (cam, pid) -> number of images; absent pairs are not listed
    gap: float = 1.0  # modality-gap knob of the people's infrared tones (see .render)

    @property
    def available(self) -> tuple[int, ...]:
        return tuple(sorted(self.train + self.val + self.test))

    def cells(self, cam: int) -> int:
        """Number of id cells of ``cam`` in ``rand_perm_cam``."""
        return self.limited_max_id if cam in LIMITED_CAMS else self.ids


def modality(cam: int) -> Modality:
    return Modality.INFRARED if cam in INFRARED_CAMS else Modality.VISIBLE


def plan(ids: int, seed: int, gap: float = 1.0) -> SysuPlan:
    """Decide splits, which camera sees whom, and how many images each (cam, id) gets."""
    if ids < MIN_IDS:
        raise ValueError(
            f'synthetic SYSU-MM01 needs ids >= {MIN_IDS} (got {ids}): pass a larger ids'
        )
    split_rng = stream(seed, seeding.SYSU, seeding.SPLIT)
    n_test = max(2, round(0.2 * ids))
    n_val = max(1, round(0.2 * ids))
    n_unusable = round(0.04 * ids)
    limited = min(ids - n_val, max(n_test + 2, round(0.625 * ids)))
    test = sorted(
        int(i) for i in split_rng.choice(np.arange(1, limited + 1), n_test, replace=False)
    )
    val = list(range(limited + 1, limited + 1 + n_val))
    rest = [i for i in range(1, ids + 1) if i not in set(test) | set(val)]
    unusable = (
        sorted(int(i) for i in split_rng.choice(rest, n_unusable, replace=False))
        if n_unusable
        else []
    )
    train = [i for i in rest if i not in set(unusable)]
    test_set = set(test)

    present: dict[int, dict[int, bool]] = {}
    for pid in range(1, ids + 1):
        r = stream(seed, seeding.SYSU, seeding.PRESENCE, pid)
        draws = r.random(6)  # always drawn, so presence of one camera never shifts another's stream
        in_a = pid <= limited
        is_test = pid in test_set
        indoor = in_a and draws[0] < (0.6 if is_test else 0.85)
        cams = {
            1: indoor,
            2: indoor,
            3: draws[1] < 0.94,
            4: draws[2] < 0.95,
            5: draws[3] < 0.96,
            6: in_a and (is_test or draws[4] < 0.9),
        }
        if is_test and not (cams[4] or cams[5]):
            cams[5] = True  # all-search gallery without cam2 must still hold every test id
        present[pid] = cams

    # Indoor search must have fewer ids than all-search, and at least one.
    indoor_test = [p for p in test if present[p][1]]
    if len(indoor_test) == len(test):
        present[test[-1]][1] = present[test[-1]][2] = False
    if not indoor_test:
        present[test[0]][1] = present[test[0]][2] = True

    for i, pid in enumerate(unusable):
        cams = present[pid]
        if i % 2 == 0:  # like the real ids with no image at all
            for c in cams:
                cams[c] = False
        elif stream(seed, seeding.SYSU, seeding.META, pid).random() < 0.5:  # visible only
            cams[3] = cams[6] = False
            if not any(cams[c] for c in VISIBLE_CAMS):
                cams[4] = True
        else:  # infrared only
            for c in VISIBLE_CAMS:
                cams[c] = False
            if not (cams[3] or cams[6]):
                cams[3] = True
    for pid in test + val + train:  # "available" means seen in both modalities
        cams = present[pid]
        if not (cams[3] or cams[6]):
            cams[3] = True
        if not any(cams[c] for c in VISIBLE_CAMS):
            cams[4 if pid > limited else 5] = True

    counts: dict[tuple[int, int], int] = {}
    for pid in range(1, ids + 1):
        for cam in range(1, 7):
            if not present[pid][cam]:
                continue
            r = stream(seed, seeding.SYSU, seeding.COUNT, pid, cam)
            if pid in test_set:
                n = (
                    r.integers(TEST_SHOTS, TEST_SHOTS + 4)
                    if cam in VISIBLE_CAMS
                    else r.integers(4, 9)
                )
            else:
                n = r.integers(3, 8) if cam in VISIBLE_CAMS else r.integers(3, 7)
            counts[(cam, pid)] = int(n)
    return SysuPlan(
        ids=ids,
        limited_max_id=limited,
        train=tuple(train),
        val=tuple(val),
        test=tuple(test),
        counts=counts,
        gap=check_gap(gap),
    )


def rand_perm_cam(p: SysuPlan, seed: int) -> np.ndarray:
    """The ``rand_perm_cam`` cell array: (6, 1) cells of (n_ids_c, 1) cells of uint8 (10, n)
    matrices."""
    out = np.empty((6, 1), dtype=object)
    for cam in range(1, 7):
        cells = np.empty((p.cells(cam), 1), dtype=object)
        for pid in range(1, p.cells(cam) + 1):
            n = p.counts.get((cam, pid), 0)
            if n > 255:
                raise ValueError(
                    f'cam{cam}/{pid:04d}: {n} images do not fit the uint8 rand_perm_cam cells'
                )
            r = stream(seed, seeding.SYSU, seeding.PERM, pid, cam)
            rows = [r.permutation(n) + 1 for _ in range(N_TRIALS)]
            cells[pid - 1, 0] = np.array(rows, dtype=np.uint8).reshape(N_TRIALS, n)
        out[cam - 1, 0] = cells
    return out


def savemat(path: Path, variables: dict) -> None:
    """``scipy.io.savemat`` with a fixed header text: scipy stamps the current time, we want equal
    bytes."""
    buf = io.BytesIO()
    scipy.io.savemat(buf, variables)
    data = bytearray(buf.getvalue())
    data[:_HEADER_TEXT] = b'MATLAB 5.0 MAT-file, written by protocols.datasets.synthetic'.ljust(
        _HEADER_TEXT
    )
    path.write_bytes(bytes(data))


_HEADER_TEXT = 116  # descriptive text field of the MAT v5 header; the rest of the header is kept


def _write_ids(exp: Path, name: str, ids: tuple[int, ...], dtype: type = np.float64) -> None:
    (exp / f'{name}.txt').write_text(','.join(str(i) for i in ids))
    # The release ships MATLAB twins holding the variable ``id`` (as the official evaluation loads
    # it; the official train_id.mat and test_id.mat hold it as a 1 x n uint16 row).
    savemat(exp / f'{name}.mat', {'id': np.asarray(ids, dtype=dtype).reshape(1, -1)})


def render_image(seed: int, person: Person, cam: int, pid: int, k: int) -> np.ndarray:
    """Image ``k`` (1-based) of ``pid`` in ``cam``."""
    r = stream(seed, seeding.SYSU, seeding.IMAGE, pid, cam, k)
    camera = CAMERAS[cam]
    return render(
        person, sample_pose(r, camera), camera, 'nir' if cam in INFRARED_CAMS else 'visible', r
    )


def write_ids_range(root: Path, p: SysuPlan, seed: int, pids: range | list[int]) -> None:
    """Render and save every image of ``pids`` (any subset, in any order: the result is the
    same)."""
    for pid in pids:
        person = None
        for cam in range(1, 7):
            n = p.counts.get((cam, pid), 0)
            if not n:
                continue
            if person is None:
                person = sample_person(stream(seed, seeding.SYSU, seeding.PERSON, pid), p.gap)
            folder = root / f'cam{cam}' / f'{pid:04d}'
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(1, n + 1):
                img = render_image(seed, person, cam, pid, k)
                Image.fromarray(img).save(folder / f'{k:04d}.jpg', quality=JPEG_QUALITY)


def write(root: Path, ids: int, seed: int, workers: int = 1, gap: float = 1.0) -> dict:
    """Write the whole dataset under ``root`` (which must exist and be empty); return its
    statistics."""
    p = plan(ids, seed, gap)
    for cam in range(1, 7):
        (root / f'cam{cam}').mkdir()
    from .parallel import run_chunks

    run_chunks(write_ids_range, list(range(1, ids + 1)), workers, root, p, seed)

    write_exp(root / 'exp', p, seed)
    return stats(p)


def write_exp(exp: Path, p: SysuPlan, seed: int, id_dtype: type = np.float64) -> None:
    """``exp/``: the id lists (``.txt`` and ``.mat`` twins) and ``rand_perm_cam.mat``."""
    exp.mkdir()
    _write_ids(exp, 'train_id', p.train, id_dtype)
    _write_ids(exp, 'val_id', p.val, id_dtype)
    _write_ids(exp, 'test_id', p.test, id_dtype)
    _write_ids(exp, 'available_id', p.available, id_dtype)
    savemat(exp / 'rand_perm_cam.mat', {'rand_perm_cam': rand_perm_cam(p, seed)})


def stats(p: SysuPlan) -> dict:
    per_cam = {}
    test = set(p.test)
    for cam in range(1, 7):
        pairs = [(pid, n) for (c, pid), n in p.counts.items() if c == cam]
        per_cam[f'cam{cam}'] = {
            'modality': modality(cam).name.lower(),
            'ids': len(pairs),
            'images': sum(n for _, n in pairs),
            'test_ids': sum(1 for pid, _ in pairs if pid in test),
            'test_images': sum(n for pid, n in pairs if pid in test),
        }
    return {
        'ids': p.ids,
        'train_ids': len(p.train),
        'val_ids': len(p.val),
        'test_ids': len(p.test),
        'available_ids': len(p.available),
        'images': sum(p.counts.values()),
        'cameras': per_cam,
    }
