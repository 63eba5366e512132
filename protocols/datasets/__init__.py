"""Dataset readers for the real on-disk layouts (SYSU-MM01, RegDB, LLCM) and what they share.

Readers live in their own modules (``sysu.py``, ``regdb.py``, ``llcm.py``) and are imported lazily
here, so that they can import the shared pieces below without an import cycle. :data:`INFO` is the
one registry of the benchmarks: what the rest of the project enumerates (names, readers, titles,
classifier sizes, result settings and their labels) comes from it.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protocols.datasets.base import DatasetLayoutError, ImageRecord, Modality

if TYPE_CHECKING:  # pragma: no cover
    from protocols.datasets.llcm import LLCM
    from protocols.datasets.regdb import RegDB
    from protocols.datasets.sysu import SYSUMM01


@dataclass(frozen=True)
class DatasetInfo:
    """What the project knows about one benchmark without reading it."""

    name: str  # the key used everywhere: configs (protocol.dataset), records, CLI flags
    title: str  # as papers name it
    reader: str  # 'module:Class' of its reader, imported on first use
    # Training identities on the released data, i.e. the classifier size of a model trained on it
    # (a model can be built without the dataset on the machine from this).
    train_classes: int
    infrared: str  # what its infrared images are called (figure legends)
    # Result settings the tables know, in table order: setting -> (group title, short header).
    settings: dict[str, tuple[str, str]] = field(default_factory=dict)


INFO = {
    'sysu': DatasetInfo(
        name='sysu',
        title='SYSU-MM01',
        reader='protocols.datasets.sysu:SYSUMM01',
        # exp/train_id.txt + exp/val_id.txt (296 + 99 ids), as AGW, MMN and MPANet train
        train_classes=395,
        infrared='infrared',
        settings={
            'all-single': ('SYSU-MM01 all-search', 'All'),
            'indoor-single': ('SYSU-MM01 indoor-search', 'Indoor'),
            'all-multi': ('SYSU-MM01 all-search multi-shot', 'All-multi'),
            'indoor-multi': ('SYSU-MM01 indoor-search multi-shot', 'Indoor-multi'),
        },
    ),
    'regdb': DatasetInfo(
        name='regdb',
        title='RegDB',
        reader='protocols.datasets.regdb:RegDB',
        train_classes=206,  # 206 of its 412 ids in every split (idx/train_visible_<k>.txt)
        infrared='thermal',
        settings={'v2t': ('RegDB V→T', 'V→T'), 't2v': ('RegDB T→V', 'T→V')},
    ),
    'llcm': DatasetInfo(
        name='llcm',
        title='LLCM',
        reader='protocols.datasets.llcm:LLCM',
        train_classes=713,  # the classifier of ZYK100/LLCM DEEN/test.py:59
        infrared='infrared',
        # VIS→IR is test.py's computation (sampled infrared probes rank every visible image);
        # vis2ir-conventional (visible probes, sampled infrared gallery) is not the papers'.
        settings={
            'ir2vis': ('LLCM IR→VIS', 'IR→VIS'),
            'vis2ir': ('LLCM VIS→IR', 'VIS→IR'),
            'vis2ir-conventional': (
                'LLCM VIS→IR, visible probes (not comparable)',
                'VIS→IR (VIS probes)',
            ),
        },
    ),
}
DATASETS = tuple(INFO)
TRAIN_CLASSES = {name: info.train_classes for name, info in INFO.items()}

__all__ = [
    'DATASETS',
    'INFO',
    'LLCM',
    'TRAIN_CLASSES',
    'DatasetInfo',
    'DatasetLayoutError',
    'ImageRecord',
    'Modality',
    'RegDB',
    'SYSUMM01',
    'TrainSet',
    'dataset_info',
    'fingerprint_files',
    'load_dataset',
    'relabel',
]


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry of ``name``, or a ValueError listing the known datasets."""
    if name not in INFO:
        raise ValueError(f'unknown dataset {name!r}; expected one of {", ".join(DATASETS)}')
    return INFO[name]


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
        digest.update(os.fsencode(f'{rel}\t{(root / rel).stat().st_size}\n'))
    for rel in sorted(split_files):
        digest.update(os.fsencode(f'--{rel}\n'))
        digest.update((root / rel).read_bytes())
    return digest.hexdigest()


def _reader(name: str) -> type:
    module, _, cls = dataset_info(name).reader.partition(':')
    return getattr(importlib.import_module(module), cls)


def load_dataset(name: str, root: str | Path) -> SYSUMM01 | RegDB | LLCM:
    """Open (index and validate) the dataset ``name`` (one of :data:`DATASETS`) stored under
    ``root``."""
    return _reader(name)(root)


def __getattr__(name: str) -> Any:
    readers = {info.reader.partition(':')[2]: key for key, info in INFO.items()}
    if name in readers:
        return _reader(readers[name])
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
