"""Decode-once image cache: every image resized to the input size, stored as one uint8 array.

Official repositories decode JPEGs with PIL in every epoch (or, AGW, pre-resize into .npy files by
hand). Here the first use of a (dataset, image list, size) decodes once, in parallel threads, into
``<cache_dir>/<key>.npy``; later epochs and runs memory-map it. The key hashes the paths, file
sizes and mtimes, so a changed dataset is never served from a stale cache.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from protocols.datasets.base import DatasetLayoutError, ImageRecord

# PIL's bilinear resize with antialiasing, the torchvision.transforms.Resize default the official
# repositories use on PIL images.
RESAMPLE = Image.BILINEAR


def default_cache_dir() -> Path:
    return Path(os.environ.get('VIREID_CACHE', Path.home() / '.cache' / 'vireid'))


def cache_key(root: str | Path, records: Sequence[ImageRecord], size: Sequence[int]) -> str:
    h = hashlib.sha1(f'{Path(root).resolve()}|{tuple(size)}|v1'.encode())
    for r in records:
        st = (Path(root) / r.path).stat()
        h.update(f'{r.path}|{st.st_size}|{st.st_mtime_ns}\n'.encode())
    return h.hexdigest()[:20]


def decode(root: str | Path, record: ImageRecord, size: Sequence[int]) -> np.ndarray:
    """One image as uint8 ``[H, W, 3]`` RGB at ``size`` (H, W); a clear error names a bad file."""
    path = Path(root) / record.path
    try:
        with Image.open(path) as im:
            im = im.convert('RGB').resize((size[1], size[0]), RESAMPLE)
            return np.asarray(im, dtype=np.uint8)
    except (OSError, ValueError) as err:
        raise DatasetLayoutError(
            f'cannot read image {path} ({type(err).__name__}: {err}); the file is missing, truncated '
            f'or not an image. Re-extract the dataset or remove the file and its split entries, then '
            f'run `vireid data check` to find others.') from err


def load_images(root: str | Path, records: Sequence[ImageRecord], size: Sequence[int],
                cache_dir: str | Path | None = None, workers: int | None = None) -> np.ndarray:
    """All ``records`` decoded to ``[N, H, W, 3]`` uint8, from the cache when it is there."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    file = cache_dir / f'{cache_key(root, records, size)}.npy'
    if file.is_file():
        arr = np.load(file, mmap_mode='r')
        if arr.shape == (len(records), size[0], size[1], 3):
            return arr
    arr = np.empty((len(records), size[0], size[1], 3), dtype=np.uint8)

    def fill(i: int) -> None:
        arr[i] = decode(root, records[i], size)

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
