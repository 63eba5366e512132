"""What every dataset reader yields: one record per image, nothing model-specific."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Modality(IntEnum):
    """Modality codes used everywhere in the project (data samples, ``extract_feat``)."""

    VISIBLE = 0
    INFRARED = 1  # SYSU-MM01 near-infrared cameras and RegDB thermal images


VISIBLE = Modality.VISIBLE
INFRARED = Modality.INFRARED


@dataclass(frozen=True, order=True)
class ImageRecord:
    """One image of a dataset.

    ``path`` is relative to the dataset root, POSIX separators, exactly as in the released
    layout (``cam3/0006/0001.jpg``, ``Thermal/1/xxx.bmp``). ``cam`` is the real camera number
    (SYSU 1..6; RegDB: 1 visible, 2 thermal).
    """

    path: str
    pid: int
    cam: int
    modality: Modality


class DatasetLayoutError(ValueError):
    """A dataset on disk does not have the layout its reader expects.

    The message always says what is wrong, where (the path), what was expected and how to fix it.
    """
