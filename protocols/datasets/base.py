"""What every dataset reader yields: one record per image, nothing model-specific."""

from __future__ import annotations

import os
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


def printable(path: str | os.PathLike) -> str:
    """``path`` as text any terminal or UTF-8 file takes: bytes of a name that are not UTF-8
    (held as surrogates, see ``os.fsdecode``) are shown as ``\\xNN``."""
    raw = os.fsencode(path)
    return raw.decode('utf-8', 'backslashreplace')


def check_link(path: str | os.PathLike) -> None:
    """A DatasetLayoutError when ``path`` is a symbolic link to nothing (skipping it would
    silently drop what it stood for from the protocol)."""
    if os.path.islink(path) and not os.path.exists(path):
        raise DatasetLayoutError(
            f'{printable(path)} is a symbolic link to {printable(os.readlink(path))}, which does '
            'not exist; restore what it points to, or replace the link by the file or folder '
            'itself (the protocol needs every image of the release)'
        )


def is_image(folder: str | os.PathLike, name: str, suffixes: tuple[str, ...]) -> bool:
    """Whether ``name`` in ``folder`` is an image file the reader indexes (an image suffix, a
    file). A broken link, or a name that is not UTF-8, is a DatasetLayoutError naming it: either
    would otherwise drop the image from the protocol, or fail later without its path."""
    if not name.lower().endswith(suffixes):
        return False
    path = os.path.join(folder, name)
    check_link(path)
    if not os.path.isfile(path):
        return False  # a folder named like an image: not an image
    try:
        name.encode('utf-8')
    except UnicodeEncodeError:
        raise DatasetLayoutError(
            f'image {printable(path)}: its file name is not UTF-8 (bytes {os.fsencode(name)!r}); '
            'the releases name their images in ASCII, so the archive was extracted with another '
            'encoding: extract it again (e.g. unzip -O CP936) or rename the file'
        ) from None
    return True
