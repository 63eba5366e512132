"""Opening dataset images with errors that name the file, and a bulk check for ``vireid data
check``."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from protocols.datasets.base import DatasetLayoutError, ImageRecord

_FIX = 're-extract the dataset archive or replace the file'


def _rel(record: ImageRecord | str) -> str:
    return record.path if isinstance(record, ImageRecord) else str(record)


def load_image(
    root: str | Path, record: ImageRecord | str, as_array: bool = False
) -> Image.Image | np.ndarray:
    """Decode one image fully as 3-channel RGB (PIL image, or HxWx3 uint8 array with ``as_array``).

    SYSU IR images may be 1-channel on disk; ``convert('RGB')`` makes every image 3-channel.
    Missing, unreadable and truncated files raise :class:`DatasetLayoutError` naming the path.
    """
    path = Path(root) / _rel(record)
    try:
        with Image.open(path) as img:
            rgb = img.convert('RGB')  # forces a full decode, so truncation is caught here
    except FileNotFoundError:
        raise DatasetLayoutError(
            f'image not found: {path}; expected the file listed in the dataset index; {_FIX}'
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DatasetLayoutError(
            f'cannot decode image {path}: {err}; expected a readable, complete image file; {_FIX}'
        ) from None
    return np.asarray(rgb, dtype=np.uint8) if as_array else rgb


@dataclass(frozen=True)
class ImageProblem:
    """One image that failed :func:`verify_images`."""

    path: str
    reason: str


def _check_one(root: Path, rel: str, quick: bool) -> ImageProblem | None:
    path = root / rel
    try:
        with Image.open(path) as img:  # reads the header
            if img.size[0] <= 0 or img.size[1] <= 0:
                return ImageProblem(rel, f'empty image size {img.size}')
            if not quick:
                if img.format == 'JPEG':
                    # Decoded at 1/8 scale: libjpeg still reads and entropy-decodes the whole
                    # stream, so a truncated or corrupt file fails as in a full decode, at about
                    # half the cost (only the full-size inverse DCT, which cannot fail, is skipped).
                    img.draft('RGB', (max(1, img.size[0] // 8), max(1, img.size[1] // 8)))
                img.load()
    except FileNotFoundError:
        return ImageProblem(
            rel, f'image not found: {path}; expected the file listed in the dataset index; {_FIX}'
        )
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        what = 'read the header of' if quick else 'decode image'
        return ImageProblem(
            rel, f'cannot {what} {path}: {err}; expected a readable, complete image file; {_FIX}'
        )
    return None


def verify_images(
    root: str | Path, records: Iterable[ImageRecord | str], quick: bool = False, workers: int = 4
) -> list[ImageProblem]:
    """Problems found in the given images (empty list = all fine), in input order.

    Full mode decodes every image (catches truncated files); ``quick`` only parses headers.
    """
    root = Path(root)
    rels = [_rel(r) for r in records]
    # PIL releases the GIL while decoding, so threads give a real speed-up on big datasets.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = pool.map(lambda rel: _check_one(root, rel, quick), rels, chunksize=64)
        return [p for p in results if p is not None]


def raise_for_problems(problems: list[ImageProblem], root: str | Path, limit: int = 20) -> None:
    """Raise one :class:`DatasetLayoutError` listing (up to ``limit``) bad images, if any."""
    if not problems:
        return
    lines = '\n'.join(f'  {p.path}: {p.reason}' for p in problems[:limit])
    more = f'\n  ... and {len(problems) - limit} more' if len(problems) > limit else ''
    raise DatasetLayoutError(
        f'{len(problems)} unreadable image(s) under {root}:\n{lines}{more}\nfix: {_FIX}'
    )
