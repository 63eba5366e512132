"""Dataset readers for the real on-disk layouts (SYSU-MM01, RegDB) and what they share.

Readers live in their own modules (``sysu.py``, ``regdb.py``) and are imported lazily here, so that
they can import the shared pieces below without an import cycle.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protocols.datasets.base import DatasetLayoutError, ImageRecord, Modality

if TYPE_CHECKING:  # pragma: no cover
    from protocols.datasets.regdb import RegDB
    from protocols.datasets.sysu import SYSUMM01

DATASETS = ('sysu', 'regdb')
# Training identities of each protocol on the released data, i.e. the classifier size of a model
# trained on it: SYSU-MM01 trains on exp/train_id.txt + exp/val_id.txt (296 + 99 ids, as the AGW,
# MMN and MPANet training scripts do); RegDB trains on 206 of its 412 ids in every split
# (idx/train_visible_<k>.txt). A model can be built without the dataset on the machine from these.
TRAIN_CLASSES = {'sysu': 395, 'regdb': 206}

__all__ = [
    'DATASETS',
    'TRAIN_CLASSES',
    'DatasetLayoutError',
    'ImageRecord',
    'Modality',
    'RegDB',
    'SYSUMM01',
    'TrainSet',
    'fingerprint_files',
    'load_dataset',
    'relabel',
]


def relabel(pids: Iterable[int]) -> dict[int, int]:
    """Training labels 0..C-1 by ascending pid (explicit, unlike AGW's reliance on set iteration
    order)."""
    return {pid: label for label, pid in enumerate(sorted(set(int(p) for p in pids)))}


@dataclass(frozen=True)
class TrainSet:
    """Training images with their classification labels (0..C-1, ascending pid)."""

    records: tuple[ImageRecord, ...]
    label_of: dict[int, int] = field(repr=False)

    @classmethod
    def from_records(cls, records: Iterable[ImageRecord]) -> TrainSet:
        records = tuple(records)
        return cls(records=records, label_of=relabel(r.pid for r in records))

    @property
    def num_classes(self) -> int:
        return len(self.label_of)

    @property
    def labels(self) -> list[int]:
        """Label of each record, aligned with ``records``."""
        return [self.label_of[r.pid] for r in self.records]

    def by_modality(self, modality: Modality) -> list[ImageRecord]:
        return [r for r in self.records if r.modality == modality]


def fingerprint_files(root: Path, image_paths: Sequence[str], split_files: Sequence[str]) -> str:
    """sha1 over sorted relative image paths + sizes, then the split files' names and bytes."""
    digest = hashlib.sha1()
    for rel in sorted(image_paths):
        digest.update(f'{rel}\t{(root / rel).stat().st_size}\n'.encode())
    for rel in sorted(split_files):
        digest.update(f'--{rel}\n'.encode())
        digest.update((root / rel).read_bytes())
    return digest.hexdigest()


def load_dataset(name: str, root: str | Path) -> SYSUMM01 | RegDB:
    """Open (index and validate) the dataset ``name`` ('sysu' or 'regdb') stored under ``root``."""
    if name == 'sysu':
        from protocols.datasets.sysu import SYSUMM01

        return SYSUMM01(root)
    if name == 'regdb':
        from protocols.datasets.regdb import RegDB

        return RegDB(root)
    raise ValueError(f'unknown dataset {name!r}; expected one of {", ".join(DATASETS)}')


def __getattr__(name: str) -> Any:
    if name == 'SYSUMM01':
        from protocols.datasets.sysu import SYSUMM01

        return SYSUMM01
    if name == 'RegDB':
        from protocols.datasets.regdb import RegDB

        return RegDB
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
