"""Decode-once image cache: every image resized to the input size, stored as one uint8 array.

Official repositories decode JPEGs with PIL in every epoch (or, AGW and MMN, pre-resize into .npy
files by hand). Here the first use of a (dataset, image list, size, resize filter) decodes once, in
parallel threads, into ``<cache_dir>/<key>.npy``; later epochs and runs memory-map it. The key
hashes the paths, file sizes and mtimes, so a changed dataset is never served from a stale cache.

The resize filter is the method's (config ``resize_filter``): AGW and MMN resize with PIL's
LANCZOS (``Image.ANTIALIAS``), MPANet and the two-stream network with torchvision's default, PIL
bilinear. Resizing goes through ``mmcv.imresize`` with its Pillow backend, which is PIL's own
``Image.resize`` (bit-identical, tested); its OpenCV backend does not low-pass filter when
shrinking and differs from PIL by up to 138 grey levels, so it is not used.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from protocols.datasets.base import DatasetLayoutError, ImageRecord

# torchvision.transforms.Resize's default on PIL images: PIL bilinear (with PIL's antialiasing).
DEFAULT_RESIZE_FILTER = 'bilinear'
# mmcv's names for PIL's filters ('lanczos' is what PIL < 10 called ANTIALIAS).
RESIZE_FILTERS = ('nearest', 'bilinear', 'bicubic', 'box', 'lanczos', 'hamming')


def check_resize_filter(name: str) -> str:
    if name not in RESIZE_FILTERS:
        raise ValueError(
            f'resize_filter = {name!r}; choose one of {", ".join(RESIZE_FILTERS)} '
            f"(PIL's filters; 'lanczos' is the official code's Image.ANTIALIAS)"
        )
    return name


def default_cache_dir() -> Path:
    return Path(os.environ.get('VIREID_CACHE', Path.home() / '.cache' / 'vireid'))


def cache_key(
    root: str | Path,
    records: Sequence[ImageRecord],
    size: Sequence[int],
    resize_filter: str = DEFAULT_RESIZE_FILTER,
) -> str:
    h = hashlib.sha1(f'{Path(root).resolve()}|{tuple(size)}|{resize_filter}|v2'.encode())
    for r in records:
        st = (Path(root) / r.path).stat()
        h.update(f'{r.path}|{st.st_size}|{st.st_mtime_ns}\n'.encode())
    return h.hexdigest()[:20]


def decode(
    root: str | Path,
    record: ImageRecord,
    size: Sequence[int],
    resize_filter: str = DEFAULT_RESIZE_FILTER,
) -> np.ndarray:
    """One image as uint8 ``[H, W, 3]`` RGB at ``size`` (H, W); a clear error names a bad file."""
    import mmcv

    path = Path(root) / record.path
    try:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert('RGB'), dtype=np.uint8)
        return mmcv.imresize(rgb, (size[1], size[0]), interpolation=resize_filter, backend='pillow')
    except (OSError, ValueError) as err:
        raise DatasetLayoutError(
            f'cannot read image {path} ({type(err).__name__}: {err}); '
            f'the file is missing, truncated or not an image. '
            f'Re-extract the dataset or remove the file and its split entries, '
            f'then run `vireid data check` to find others.'
        ) from err


def load_images(
    root: str | Path,
    records: Sequence[ImageRecord],
    size: Sequence[int],
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    resize_filter: str = DEFAULT_RESIZE_FILTER,
) -> np.ndarray:
    """All ``records`` decoded to ``[N, H, W, 3]`` uint8, from the cache when it is there."""
    check_resize_filter(resize_filter)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    file = cache_dir / f'{cache_key(root, records, size, resize_filter)}.npy'
    if file.is_file():
        arr = np.load(file, mmap_mode='r')
        if arr.shape == (len(records), size[0], size[1], 3):
            return arr
    arr = np.empty((len(records), size[0], size[1], 3), dtype=np.uint8)

    def fill(i: int) -> None:
        arr[i] = decode(root, records[i], size, resize_filter)

    # PIL releases the GIL while decoding and resizing, so threads scale.
    with ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(fill, range(len(records))))
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Write-then-rename: a concurrent reader never sees a half-written cache file.
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix='.npy.tmp')
    with os.fdopen(fd, 'wb') as f:
        np.save(f, arr)
    os.replace(tmp, file)
    return np.load(file, mmap_mode='r')
