"""LLCM reader for the layout the official code reads (ZYK100/LLCM@886e27c, ``DEEN/``).

::

    <root>/idx/train_vis.txt     "<path relative to root> <label>" per line (data_loader.py:92-112)
    <root>/idx/train_nir.txt     the same for the near-infrared images
    <root>/idx/test_id.txt       one line of comma-separated test identities (data_manager.py:76-83)
    <root>/test_vis/cam1..cam9/<pid:04d>/<image files>           (data_manager.py:71-72,85-90)
    <root>/test_nir/cam1,cam2,cam4..cam9/<pid:04d>/<image files> (data_manager.py:73-74)

The test sets are read exactly as ``process_query_llcm`` / ``process_gallery_llcm`` read them:
test identities in the order of their 4-digit folder names, then the cameras in the official
list order (the infrared list has no camera 3: a ``test_nir/cam3`` folder is never read), then the
files of the folder sorted by name. Identities and cameras come from the folder components
(``test_<vis|nir>/cam<K>/<pid>``), not from the first ``cam`` in the path as the official code
parses them (which breaks for a root whose path contains "cam"). Training images are the two
lists; their label is the class (labels 0..712 on the release, one label space for both
modalities, as the official sampler indexes its positions by label, DEEN/utils.py:18-30). The lists
carry no camera and no official training code uses one: training records have camera 0.
"""

from __future__ import annotations

import os
from pathlib import Path

from protocols.datasets import TrainSet, fingerprint_files
from protocols.datasets.base import DatasetLayoutError, ImageRecord, Modality, check_link, is_image

# Camera lists of DEEN/data_manager.py:71-74 (and :106-109), in the official order.
VISIBLE_CAMS = (1, 2, 3, 4, 5, 6, 7, 8, 9)
INFRARED_CAMS = (1, 2, 4, 5, 6, 7, 8, 9)
CAMERAS = {Modality.VISIBLE: VISIBLE_CAMS, Modality.INFRARED: INFRARED_CAMS}
TEST_DIRS = {Modality.VISIBLE: 'test_vis', Modality.INFRARED: 'test_nir'}
TRAIN_LISTS = {Modality.VISIBLE: 'idx/train_vis.txt', Modality.INFRARED: 'idx/train_nir.txt'}
TEST_ID_FILE = 'idx/test_id.txt'
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp')
TRAIN_CAM = 0  # training lists carry no camera

_LAYOUT = (
    'expected the LLCM release layout: <root>/idx/{train_vis,train_nir,test_id}.txt, '
    '<root>/test_vis/cam1..cam9/<pid:04d>/<images> and <root>/test_nir/cam<K>/<pid:04d>/<images>'
)
_FIX = (
    'fix: extract the LLCM archive so that --root points at the folder holding idx/, test_vis/ and '
    'test_nir/'
)


def _normalise(path: str) -> str:
    path = path.replace('\\', '/')
    while path.startswith('./'):
        path = path[2:]
    return path.lstrip('/')


def read_test_ids(path: Path) -> tuple[int, ...]:
    """Ids of ``idx/test_id.txt``: its first non-empty line, comma-separated integers."""
    if not path.is_file():
        raise DatasetLayoutError(f'missing test identity file {path}; {_LAYOUT}; {_FIX}')
    lines = [ln.strip() for ln in path.read_text(errors='replace').splitlines() if ln.strip()]
    if not lines:
        raise DatasetLayoutError(
            f'{path} is empty; expected one line of comma-separated person ids such as '
            f'"2,5,17"; {_FIX}'
        )
    ids = []
    for token in lines[0].split(','):
        token = token.strip()
        if not token:
            continue  # a trailing comma is harmless
        if not token.isdigit():
            raise DatasetLayoutError(
                f'{path}: {token!r} is not a person id; expected one line of comma-separated '
                f'integers; {_FIX}'
            )
        ids.append(int(token))
    if not ids:
        raise DatasetLayoutError(f'{path} lists no ids; expected comma-separated integers; {_FIX}')
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise DatasetLayoutError(
            f'{path} lists ids {twice[:10]} more than once (the official code would then query '
            'their images twice); fix: use the test_id.txt of the release'
        )
    if any(i > 9999 for i in ids):
        raise DatasetLayoutError(
            f'{path} lists ids above 9999, which have no 4-digit folder <pid:04d>; {_FIX}'
        )
    return tuple(ids)


class LLCM:
    """Index of an LLCM folder: the test images of both modalities in the official order, the
    test identities, and (read on first use) the training lists.

    The test layout is validated on construction; a problem raises :class:`DatasetLayoutError`.
    """

    name = 'llcm'

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetLayoutError(
                f'LLCM root {self.root} does not exist or is not a folder; {_LAYOUT}; {_FIX}'
            )
        missing = [d for d in ('idx', *TEST_DIRS.values()) if not (self.root / d).is_dir()]
        if missing:
            raise DatasetLayoutError(
                f'LLCM root {self.root} is missing folder(s) {", ".join(missing)}; '
                f'{_LAYOUT}; {_FIX}'
            )
        self.test_ids = read_test_ids(self.root / TEST_ID_FILE)
        # (modality, cam, pid) -> folder relative to the root, for every folder the protocol reads.
        self.test_dirs: dict[tuple[Modality, int, int], str] = {}
        # Files in those folders that are not images (the seeded draw lists them, as DEEN does).
        self.stray_files: list[str] = []
        # Folders the official code never reads (not a camera of its list, not a test id).
        self.unread: list[str] = []
        self._test: dict[Modality, list[ImageRecord]] = {
            m: self._scan(m) for m in (Modality.VISIBLE, Modality.INFRARED)
        }
        self._check_test_images()
        self._train: TrainSet | None = None

    # ----------------------------------------------------------------------------------------------
    # Test folders

    def _scan(self, modality: Modality) -> list[ImageRecord]:
        top = TEST_DIRS[modality]
        cams = CAMERAS[modality]
        wanted = {f'{pid:04d}' for pid in self.test_ids}
        for entry in sorted(os.scandir(self.root / top), key=lambda e: e.name):
            if entry.is_dir() and entry.name not in {f'cam{c}' for c in cams}:
                self.unread.append(f'{top}/{entry.name}')
            elif entry.is_dir():
                for sub in sorted(os.scandir(entry.path), key=lambda e: e.name):
                    if sub.name not in wanted:
                        self.unread.append(f'{top}/{entry.name}/{sub.name}')
        records = []
        # The official loops: ids as 4-digit strings, sorted; cameras in list order.
        for folder in sorted(f'{pid:04d}' for pid in self.test_ids):
            for cam in cams:
                rel = f'{top}/cam{cam}/{folder}'
                path = self.root / rel
                if not path.is_dir():
                    check_link(path)
                    continue
                names = sorted(os.listdir(path))
                images = [n for n in names if is_image(path, n, IMAGE_SUFFIXES)]
                if not images:
                    raise DatasetLayoutError(
                        f'test folder {path} holds no image; the official gallery draw would '
                        f'fail on it; {_LAYOUT}; fix: restore its images or remove the empty '
                        'folder'
                    )
                self.test_dirs[(modality, cam, int(folder))] = rel
                self.stray_files += [f'{rel}/{n}' for n in names if n not in images]
                records += [ImageRecord(f'{rel}/{n}', int(folder), cam, modality) for n in images]
        return records

    def _check_test_images(self) -> None:
        for modality, top in TEST_DIRS.items():
            if not self._test[modality]:
                raise DatasetLayoutError(
                    f'{self.root / top} holds no image of the identities in '
                    f'{self.root / TEST_ID_FILE}; {_LAYOUT}; {_FIX}'
                )
        seen = {r.pid for recs in self._test.values() for r in recs}
        empty = [pid for pid in self.test_ids if pid not in seen]
        if empty:
            raise DatasetLayoutError(
                f'{self.root / TEST_ID_FILE} lists {len(empty)} id(s) with no test image in '
                f'either modality: {empty[:10]}{" ..." if len(empty) > 10 else ""}; expected '
                'test_vis/cam<K>/<pid:04d>/ or test_nir/cam<K>/<pid:04d>/ for each listed id; '
                'fix: restore the missing folders or use the test_id.txt that came with these '
                'images'
            )

    def test_images(self, modality: Modality) -> list[ImageRecord]:
        """Every test image of ``modality`` in the official order (``process_query_llcm``)."""
        return list(self._test[Modality(modality)])

    def test_folder(self, modality: Modality, cam: int, pid: int) -> str | None:
        """The test folder of (modality, camera, identity) relative to the root, or None."""
        return self.test_dirs.get((Modality(modality), cam, pid))

    # ----------------------------------------------------------------------------------------------
    # Training lists

    def _parse(self, modality: Modality) -> list[ImageRecord]:
        rel = TRAIN_LISTS[modality]
        path = self.root / rel
        if not path.is_file():
            raise DatasetLayoutError(f'missing training list {path}; {_LAYOUT}; {_FIX}')
        out: list[ImageRecord] = []
        seen: set[str] = set()
        test_dirs = set(TEST_DIRS.values())
        for lineno, line in enumerate(path.read_text(errors='replace').splitlines(), 1):
            if not line.strip():
                continue
            where = f'{path}:{lineno}'
            fields = line.strip().rsplit(maxsplit=1)
            if len(fields) != 2 or not fields[1].isdigit():
                raise DatasetLayoutError(
                    f'{where}: malformed line {line!r}; expected "<image path relative to the '
                    f'root> <integer label>"; {_FIX}'
                )
            img = _normalise(fields[0])
            if img.split('/')[0] in test_dirs:
                raise DatasetLayoutError(
                    f'{where}: {img} is a test image; expected training images only; fix: use '
                    'the idx files of the release'
                )
            if not (self.root / img).is_file():
                check_link(self.root / img)
                raise DatasetLayoutError(
                    f'{where}: listed image {self.root / img} does not exist; expected every '
                    f'line to name an image under {self.root}; {_FIX}'
                )
            if img in seen:
                raise DatasetLayoutError(
                    f'{where}: {img} is listed twice; fix: remove the duplicate line'
                )
            seen.add(img)
            out.append(ImageRecord(img, int(fields[1]), TRAIN_CAM, modality))
        if not out:
            raise DatasetLayoutError(
                f'training list {path} is empty; expected one "<path> <label>" line per image; '
                f'{_FIX}'
            )
        return out

    def train_set(self) -> TrainSet:
        """Both training lists; labels 0..C-1 by ascending list label (the lists' own labels on
        the release, 0..712)."""
        if self._train is None:
            vis, nir = self._parse(Modality.VISIBLE), self._parse(Modality.INFRARED)
            only = {
                TRAIN_LISTS[m]: sorted({r.pid for r in a} - {r.pid for r in b})
                for m, a, b in ((Modality.VISIBLE, vis, nir), (Modality.INFRARED, nir, vis))
            }
            bad = {k: v for k, v in only.items() if v}
            if bad:
                shown = '; '.join(f'{k} alone has labels {v[:10]}' for k, v in bad.items())
                raise DatasetLayoutError(
                    f'LLCM training lists under {self.root} disagree: {shown}; expected every '
                    'training label in both lists (the official sampler draws each identity from '
                    'both modalities); fix: use the idx files of the release'
                )
            self._train = TrainSet.from_records(vis + nir)
        return self._train

    # ----------------------------------------------------------------------------------------------
    # Provenance and statistics

    @property
    def records(self) -> tuple[ImageRecord, ...]:
        """Every image the protocol uses: the training lists' and the test folders'."""
        return self.train_set().records + tuple(
            self._test[Modality.VISIBLE] + self._test[Modality.INFRARED]
        )

    def split_files(self) -> list[str]:
        idx = self.root / 'idx'
        return sorted(f'idx/{e.name}' for e in os.scandir(idx) if e.is_file())

    def fingerprint(self) -> str:
        """sha1 of sorted relative image paths + sizes and of every file in ``idx/``."""
        return fingerprint_files(self.root, [r.path for r in self.records], self.split_files())

    def statistics(self) -> dict[str, list[dict]]:
        """Tables for ``vireid data check``: per test camera, and per set (validates the training
        lists)."""
        per_cam = []
        for modality, top in TEST_DIRS.items():
            for cam in CAMERAS[modality]:
                recs = [r for r in self._test[modality] if r.cam == cam]
                per_cam.append(
                    {
                        'folder': f'{top}/cam{cam}',
                        'modality': 'visible' if modality == Modality.VISIBLE else 'infrared',
                        'test ids': len({r.pid for r in recs}),
                        'test images': len(recs),
                    }
                )
        train = self.train_set()
        vis, nir = self._test[Modality.VISIBLE], self._test[Modality.INFRARED]
        sets = [
            {
                'set': 'train (idx/train_vis.txt, idx/train_nir.txt)',
                'ids': train.num_classes,
                'visible': len(train.by_modality(Modality.VISIBLE)),
                'infrared': len(train.by_modality(Modality.INFRARED)),
            },
            {
                'set': 'test (idx/test_id.txt)',
                'ids': len(self.test_ids),
                'visible': len(vis),
                'infrared': len(nir),
            },
        ]
        return {'test cameras': per_cam, 'sets': sets}
