"""RegDB reader: ``Visible/<id>/*.bmp``, ``Thermal/<id>/*.bmp`` and the ten ``idx/`` train/test
splits.

Identities of split images come from the idx label column (only equality matters); the label is
checked against the identity folder (one folder <-> one label within a split part). File names are
never parsed.
"""

from __future__ import annotations

import os
from pathlib import Path

from protocols.datasets import TrainSet, fingerprint_files
from protocols.datasets.base import DatasetLayoutError, ImageRecord, Modality, check_link, is_image

TRIALS = tuple(range(1, 11))
PARTS = ('train', 'test')
MODALITY_DIRS = {Modality.VISIBLE: 'Visible', Modality.INFRARED: 'Thermal'}
# One dual camera: visible and thermal frames are "camera" 1 and 2.
CAMS = {Modality.VISIBLE: 1, Modality.INFRARED: 2}
IMAGE_SUFFIXES = ('.bmp', '.jpg', '.jpeg', '.png')

_LAYOUT = (
    'expected the RegDB layout: <root>/Visible/<id>/*.bmp, <root>/Thermal/<id>/*.bmp and '
    '<root>/idx/{train,test}_{visible,thermal}_{1..10}.txt'
)
_FIX = (
    'fix: extract the RegDB archive so that --root points at the folder holding Visible/, Thermal/ '
    'and idx/'
)


def split_file(trial: int, part: str, modality: Modality) -> str:
    """Relative path of one split file, e.g. ``idx/test_thermal_3.txt``."""
    kind = 'visible' if modality == Modality.VISIBLE else 'thermal'
    return f'idx/{part}_{kind}_{trial}.txt'


def _normalise(path: str) -> str:
    path = path.replace('\\', '/')
    while path.startswith('./'):
        path = path[2:]
    return path.lstrip('/')


class RegDB:
    """Index of a RegDB folder; split files are parsed and validated when first used."""

    name = 'regdb'

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetLayoutError(
                f'RegDB root {self.root} does not exist or is not a folder; {_LAYOUT}; {_FIX}'
            )
        missing = [d for d in (*MODALITY_DIRS.values(), 'idx') if not (self.root / d).is_dir()]
        if missing:
            raise DatasetLayoutError(
                f'RegDB root {self.root} is missing folder(s) {", ".join(missing)}; '
                f'{_LAYOUT}; {_FIX}'
            )
        self.records: tuple[ImageRecord, ...] = tuple(sorted(self._scan()))
        self._by_path = {r.path: r for r in self.records}
        self._splits: dict[tuple[int, str, Modality], list[ImageRecord]] = {}

    def _scan(self) -> list[ImageRecord]:
        records = []
        for modality, top in MODALITY_DIRS.items():
            for entry in sorted(os.scandir(self.root / top), key=lambda e: e.name):
                if not entry.is_dir():
                    check_link(entry.path)
                    continue
                if not entry.name.isdigit():
                    raise DatasetLayoutError(
                        f'unexpected folder {self.root / top / entry.name}: identity folders must '
                        f'be numeric (e.g. {top}/1); {_LAYOUT}; fix: remove or rename the folder'
                    )
                for f in sorted(os.scandir(entry.path), key=lambda e: e.name):
                    if is_image(entry.path, f.name, IMAGE_SUFFIXES):
                        records.append(
                            ImageRecord(
                                f'{top}/{entry.name}/{f.name}',
                                int(entry.name),
                                CAMS[modality],
                                modality,
                            )
                        )
        if not records:
            raise DatasetLayoutError(
                f'RegDB root {self.root} holds no images under Visible/ or Thermal/; '
                f'{_LAYOUT}; {_FIX}'
            )
        return records

    # ----------------------------------------------------------------------------------------------
    # Split files

    def _check_trial(self, trial: int) -> int:
        if isinstance(trial, bool) or int(trial) != trial or int(trial) not in TRIALS:
            raise ValueError(f'RegDB split/trial must be an integer in 1..10, got {trial!r}')
        return int(trial)

    def _parse(self, trial: int, part: str, modality: Modality) -> list[ImageRecord]:
        rel = split_file(trial, part, modality)
        path = self.root / rel
        if not path.is_file():
            raise DatasetLayoutError(f'missing split file {path}; {_LAYOUT}; {_FIX}')
        expected_top = MODALITY_DIRS[modality]
        out: list[ImageRecord] = []
        seen: set[str] = set()
        for lineno, line in enumerate(path.read_text(errors='replace').splitlines(), 1):
            if not line.strip():
                continue
            where = f'{path}:{lineno}'
            fields = line.strip().rsplit(maxsplit=1)
            if len(fields) != 2 or not fields[1].lstrip('-').isdigit():
                raise DatasetLayoutError(
                    f'{where}: malformed line {line!r}; expected "<relative image path> '
                    f'<integer label>"; {_FIX}'
                )
            img, label = _normalise(fields[0]), int(fields[1])
            if img.split('/')[0] != expected_top:
                raise DatasetLayoutError(
                    f'{where}: {img} is not under {expected_top}/ although the file lists '
                    f'{expected_top.lower()} images; fix: use the idx files of the release'
                )
            rec = self._by_path.get(img)
            if rec is None:
                raise DatasetLayoutError(
                    f'{where}: listed image {self.root / img} does not exist; expected every '
                    f'idx entry to name an image under {self.root}; {_FIX}'
                )
            if img in seen:
                raise DatasetLayoutError(
                    f'{where}: {img} is listed twice; fix: remove the duplicate line'
                )
            seen.add(img)
            out.append(ImageRecord(rec.path, label, rec.cam, rec.modality))
        if not out:
            raise DatasetLayoutError(
                f'split file {path} is empty; expected one "<path> <label>" line per image; {_FIX}'
            )
        return out

    def _check_labels(self, trial: int, part: str, records: list[ImageRecord]) -> None:
        # Visible and thermal folders share identity numbers, so one label <-> one folder across
        # both files.
        folder_of: dict[int, int] = {}
        label_of: dict[int, int] = {}
        for rec in records:
            folder = self._by_path[rec.path].pid
            known_folder = folder_of.setdefault(rec.pid, folder)
            known_label = label_of.setdefault(folder, rec.pid)
            if known_folder != folder or known_label != rec.pid:
                raise DatasetLayoutError(
                    f'idx/{part}_*_{trial}.txt under {self.root}: label {rec.pid} of {rec.path} '
                    f'disagrees with the identity folders (label {rec.pid} is also used for folder '
                    f'{folder_of[rec.pid]}, folder {folder} also has label {label_of[folder]}); '
                    'expected one label per identity folder; fix: use the idx files that came with '
                    'these images'
                )

    def split_records(self, trial: int, part: str, modality: Modality) -> list[ImageRecord]:
        """Images of one split file, in file order, with ``pid`` = the idx label."""
        trial = self._check_trial(trial)
        if part not in PARTS:
            raise ValueError(f'RegDB split part must be one of {PARTS}, got {part!r}')
        modality = Modality(modality)
        key = (trial, part, modality)
        if key not in self._splits:
            both = {m: self._parse(trial, part, m) for m in MODALITY_DIRS}
            self._check_labels(trial, part, both[Modality.VISIBLE] + both[Modality.INFRARED])
            if part == 'test':
                train = self.split_records(trial, 'train', Modality.VISIBLE) + self.split_records(
                    trial, 'train', Modality.INFRARED
                )
                train_folders = {self._by_path[r.path].pid for r in train}
                shared = sorted(
                    {self._by_path[r.path].pid for recs in both.values() for r in recs}
                    & train_folders
                )
                if shared:
                    raise DatasetLayoutError(
                        f'RegDB split {trial} under {self.root}: identity folders {shared[:10]} '
                        'appear in both the train and the test idx files; expected disjoint '
                        'identities; fix: use the idx files of the release'
                    )
            for m, recs in both.items():
                self._splits[(trial, part, m)] = recs
        return list(self._splits[key])

    def train_set(self, trial: int) -> TrainSet:
        """Split ``trial``'s train images of both modalities, labels 0..C-1 by ascending idx
        label."""
        return TrainSet.from_records(
            self.split_records(trial, 'train', Modality.VISIBLE)
            + self.split_records(trial, 'train', Modality.INFRARED)
        )

    def test_visible(self, trial: int) -> list[ImageRecord]:
        return self.split_records(trial, 'test', Modality.VISIBLE)

    def test_thermal(self, trial: int) -> list[ImageRecord]:
        return self.split_records(trial, 'test', Modality.INFRARED)

    # ----------------------------------------------------------------------------------------------
    # Provenance and statistics

    def split_files(self) -> list[str]:
        idx = self.root / 'idx'
        return sorted(f'idx/{e.name}' for e in os.scandir(idx) if e.is_file())

    def fingerprint(self) -> str:
        """sha1 of sorted relative image paths + sizes and of every file in ``idx/``."""
        return fingerprint_files(self.root, [r.path for r in self.records], self.split_files())

    def statistics(self) -> dict[str, list[dict]]:
        """Tables for ``vireid data check``: per modality, and per split (validates all ten
        splits)."""
        per_mod = []
        for modality, top in MODALITY_DIRS.items():
            recs = [r for r in self.records if r.modality == modality]
            per_mod.append(
                {
                    'modality': top.lower(),
                    'camera': CAMS[modality],
                    'ids': len({r.pid for r in recs}),
                    'images': len(recs),
                }
            )
        per_trial = []
        for t in TRIALS:
            train = self.train_set(t)
            tv, tt = self.test_visible(t), self.test_thermal(t)
            per_trial.append(
                {
                    'split': t,
                    'train ids': train.num_classes,
                    'train visible': len(train.by_modality(Modality.VISIBLE)),
                    'train thermal': len(train.by_modality(Modality.INFRARED)),
                    'test ids': len({r.pid for r in tv} | {r.pid for r in tt}),
                    'test visible': len(tv),
                    'test thermal': len(tt),
                }
            )
        return {'modalities': per_mod, 'splits': per_trial}
