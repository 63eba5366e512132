"""SYSU-MM01 reader for the layout as released (``cam1..cam6/<pid>/<k>.jpg`` + ``exp/``).

Ids and cameras come from the directory components (``cam<c>/<pid>/``), never from fixed string
offsets.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from protocols.datasets import TrainSet, fingerprint_files
from protocols.datasets.base import DatasetLayoutError, ImageRecord, Modality, check_link, is_image

CAMERAS = (1, 2, 3, 4, 5, 6)
VISIBLE_CAMS = (1, 2, 4, 5)
INFRARED_CAMS = (3, 6)
# Gallery cameras of each search mode; the query is always every IR image of the test ids.
GALLERY_CAMS = {'all': (1, 2, 4, 5), 'indoor': (1, 2)}
SPLIT_FILES = {'train': 'exp/train_id.txt', 'val': 'exp/val_id.txt', 'test': 'exp/test_id.txt'}
RAND_PERM_FILE = 'exp/rand_perm_cam.mat'
IMAGE_SUFFIXES = ('.jpg', '.jpeg')

_LAYOUT = (
    'expected the SYSU-MM01 release layout: <root>/cam1..cam6/<pid:04d>/<k:04d>.jpg and '
    '<root>/exp/{train,val,test}_id.txt'
)
_FIX = 'fix: extract SYSU-MM01.zip so that --root points at the folder holding cam1..cam6 and exp/'
_CAM_DIR = re.compile(r'cam([1-6])')


def read_id_file(path: Path) -> tuple[int, ...]:
    """Ids of one ``exp/*_id.txt`` file: first non-empty line, comma separated integers."""
    if not path.is_file():
        raise DatasetLayoutError(f'missing split file {path}; {_LAYOUT}; {_FIX}')
    lines = [ln.strip() for ln in path.read_text(errors='replace').splitlines() if ln.strip()]
    if not lines:
        raise DatasetLayoutError(
            f'split file {path} is empty; expected one line of comma-separated person '
            f'ids such as "1,2,4"; {_FIX}'
        )
    ids = []
    for token in lines[0].split(','):
        token = token.strip()
        if not token:
            continue  # a trailing comma is harmless
        if not token.isdigit():
            raise DatasetLayoutError(
                f'split file {path}: {token!r} is not a person id; expected one line of '
                f'comma-separated integers; {_FIX}'
            )
        ids.append(int(token))
    if not ids:
        raise DatasetLayoutError(
            f'split file {path} lists no ids; expected comma-separated integers; {_FIX}'
        )
    return tuple(ids)


class SYSUMM01:
    """Index of a SYSU-MM01 folder: every image as an :class:`ImageRecord`, the id splits, the test
    sets.

    Everything is validated on construction; a layout problem raises :class:`DatasetLayoutError`.
    With ``strict=False`` the faults that leave an index behind (split ids without images, empty
    cameras) are collected in ``problems`` instead, so that a preflight can report them all at once.
    """

    name = 'sysu'

    def __init__(self, root: str | Path, *, strict: bool = True):
        self.root = Path(root).expanduser()
        self.strict = strict
        self.problems: list[str] = []
        if not self.root.is_dir():
            raise DatasetLayoutError(
                f'SYSU-MM01 root {self.root} does not exist or is not a folder; {_LAYOUT}; {_FIX}'
            )
        missing = [f'cam{c}' for c in CAMERAS if not (self.root / f'cam{c}').is_dir()]
        if missing:
            raise DatasetLayoutError(
                f'SYSU-MM01 root {self.root} is missing camera folder(s) '
                f'{", ".join(missing)}; {_LAYOUT}; {_FIX}'
            )
        if not (self.root / 'exp').is_dir():
            raise DatasetLayoutError(
                f'SYSU-MM01 root {self.root} has no exp/ folder; {_LAYOUT}; {_FIX}'
            )
        self.train_ids = read_id_file(self.root / SPLIT_FILES['train'])
        self.val_ids = read_id_file(self.root / SPLIT_FILES['val'])
        self.test_ids = read_id_file(self.root / SPLIT_FILES['test'])
        self._check_disjoint()
        # (cam, pid) -> folder name as on disk (zero padding kept for the seeded sampler's listing).
        self.id_dirs: dict[tuple[int, int], str] = {}
        # Files inside id folders that are not images (AGW's seeded draw still lists them).
        self.stray_files: list[str] = []
        self.records: tuple[ImageRecord, ...] = tuple(sorted(self._scan()))
        self._by_pid: dict[int, list[ImageRecord]] = {}
        for rec in self.records:
            self._by_pid.setdefault(rec.pid, []).append(rec)
        self._check_ids_have_images()
        self._check_cameras_have_images()

    # ----------------------------------------------------------------------------------------------
    # Indexing and validation

    def _check_disjoint(self) -> None:
        splits = {
            'train': set(self.train_ids),
            'val': set(self.val_ids),
            'test': set(self.test_ids),
        }
        for a, b in (('train', 'test'), ('val', 'test'), ('train', 'val')):
            both = sorted(splits[a] & splits[b])
            if both:
                raise DatasetLayoutError(
                    f'{SPLIT_FILES[a]} and {SPLIT_FILES[b]} under {self.root} share ids '
                    f'{both[:10]}; expected disjoint id splits; {_FIX}'
                )

    def _scan(self) -> list[ImageRecord]:
        records = []
        for cam in CAMERAS:
            modality = Modality.INFRARED if cam in INFRARED_CAMS else Modality.VISIBLE
            cam_dir = self.root / f'cam{cam}'
            for entry in sorted(os.scandir(cam_dir), key=lambda e: e.name):
                if not entry.is_dir():
                    check_link(entry.path)  # an id folder linked to nothing is not a stray file
                    continue  # stray files next to id folders carry no identity
                if not entry.name.isdigit():
                    raise DatasetLayoutError(
                        f'unexpected folder {cam_dir / entry.name}: id folders must be numeric '
                        f'person ids (e.g. cam{cam}/0006); {_LAYOUT}; fix: remove or rename the '
                        'folder'
                    )
                pid = int(entry.name)
                if (cam, pid) in self.id_dirs:
                    raise DatasetLayoutError(
                        f'two folders for person {pid} in {cam_dir}: {self.id_dirs[(cam, pid)]} '
                        f'and {entry.name}; expected one <pid:04d> folder per person; fix: merge '
                        'or remove one'
                    )
                self.id_dirs[(cam, pid)] = entry.name
                for f in sorted(os.scandir(entry.path), key=lambda e: e.name):
                    rel = f'cam{cam}/{entry.name}/{f.name}'
                    if is_image(entry.path, f.name, IMAGE_SUFFIXES):
                        records.append(ImageRecord(rel, pid, cam, modality))
                    else:
                        self.stray_files.append(rel)
        return records

    def _check_cameras_have_images(self) -> None:
        """Every camera holds images: an empty one is a half-extracted archive, and it would
        silently drop its queries (cams 3, 6) or gallery candidates (cams 1, 2, 4, 5)."""
        have = {r.cam for r in self.records}
        empty = [cam for cam in CAMERAS if cam not in have]
        if empty:
            folders = ', '.join(str(self.root / f'cam{cam}') for cam in empty)
            self._fault(
                f'camera folder(s) {folders} hold no images; {_LAYOUT}; '
                f'{_FIX} (re-extract the archive completely)'
            )

    def _check_ids_have_images(self) -> None:
        for split, ids in (
            ('train', self.train_ids),
            ('val', self.val_ids),
            ('test', self.test_ids),
        ):
            empty = [pid for pid in ids if pid not in self._by_pid]
            if empty:
                self._fault(
                    f'{self.root / SPLIT_FILES[split]} lists {len(empty)} id(s) with no image in '
                    f'any camera folder: {empty[:10]}{" ..." if len(empty) > 10 else ""}; expected '
                    'cam<c>/<pid:04d>/*.jpg for each listed id; fix: restore the missing folders '
                    'or use the split files that came with these images'
                )

    def _fault(self, message: str) -> None:
        if self.strict:
            raise DatasetLayoutError(message)
        self.problems.append(message)

    # ----------------------------------------------------------------------------------------------
    # Sets used by training and by the protocol

    def images_of(self, pid: int) -> list[ImageRecord]:
        return list(self._by_pid.get(pid, ()))

    def train_set(self) -> TrainSet:
        """Train + val ids (the AGW/MPANet convention: 395 ids on the real data), both
        modalities."""
        ids = set(self.train_ids) | set(self.val_ids)
        return TrainSet.from_records(r for r in self.records if r.pid in ids)

    def _test_images(self, cams: tuple[int, ...]) -> list[ImageRecord]:
        # id-major, then camera in the given order, then file name: AGW's query order.
        order = {cam: i for i, cam in enumerate(cams)}
        out = [
            r for pid in sorted(self.test_ids) for r in self._by_pid.get(pid, ()) if r.cam in order
        ]
        return sorted(out, key=lambda r: (r.pid, order[r.cam], r.path))

    def query_records(self) -> list[ImageRecord]:
        """Every IR image (cams 3, 6) of the test ids; identical for all-search and
        indoor-search."""
        return self._test_images(INFRARED_CAMS)

    def gallery_candidates(self) -> list[ImageRecord]:
        """Every visible image (cams 1, 2, 4, 5) of the test ids: the fixed list trials index
        into."""
        return self._test_images(VISIBLE_CAMS)

    @property
    def rand_perm_path(self) -> Path:
        return self.root / RAND_PERM_FILE

    # ----------------------------------------------------------------------------------------------
    # Provenance and statistics

    def split_files(self) -> list[str]:
        exp = self.root / 'exp'
        return sorted(f'exp/{e.name}' for e in os.scandir(exp) if e.is_file())

    def fingerprint(self) -> str:
        """sha1 of sorted relative image paths + sizes and of every file in ``exp/``."""
        return fingerprint_files(self.root, [r.path for r in self.records], self.split_files())

    def statistics(self) -> dict[str, list[dict]]:
        """Tables for ``vireid data check``: per camera, and per split."""
        train_ids = set(self.train_ids) | set(self.val_ids)
        test_ids = set(self.test_ids)
        per_cam = []
        for cam in CAMERAS:
            recs = [r for r in self.records if r.cam == cam]
            per_cam.append(
                {
                    'camera': f'cam{cam}',
                    'modality': 'infrared' if cam in INFRARED_CAMS else 'visible',
                    'ids': len({r.pid for r in recs}),
                    'images': len(recs),
                    'train+val images': sum(r.pid in train_ids for r in recs),
                    'test ids': len({r.pid for r in recs if r.pid in test_ids}),
                    'test images': sum(r.pid in test_ids for r in recs),
                }
            )
        train = self.train_set()
        splits = [
            {
                'set': 'train (train+val ids)',
                'ids': train.num_classes,
                'visible': len(train.by_modality(Modality.VISIBLE)),
                'infrared': len(train.by_modality(Modality.INFRARED)),
            },
            {
                'set': 'query (test ids, cams 3+6)',
                'ids': len({r.pid for r in self.query_records()}),
                'visible': 0,
                'infrared': len(self.query_records()),
            },
            {
                'set': 'gallery candidates (test ids, cams 1,2,4,5)',
                'ids': len({r.pid for r in self.gallery_candidates()}),
                'visible': len(self.gallery_candidates()),
                'infrared': 0,
            },
        ]
        return {'cameras': per_cam, 'splits': splits}
