"""Decode-once image cache: every image resized to the input size, stored as one uint8 array.

Official repositories decode JPEGs with PIL in every epoch (or, AGW and MMN, pre-resize into .npy
files by hand). Here the first use of a (dataset, image list, size, resize filter) decodes once, in
parallel threads, into ``<cache_dir>/<key>.npy``; later epochs and runs memory-map it. The key
hashes the paths, file sizes and mtimes, so a changed dataset is never served from a stale cache.

One *entry* is that ``.npy`` file, ``N x H x W x 3`` uint8 (N images of the list, H x W the
config's ``input_size``) after a 128-byte header, plus ``<key>.json`` saying what it holds and
when it was last used. A run makes two: its training images and its test images (the protocol's
queries and gallery candidates). Configs with the same input size and resize filter share entries;
:func:`cache_bytes` predicts a config's, :func:`list_entries` and :func:`remove_entries` serve
``vireid cache list|clear`` (docs/cache.md).

The resize filter is the method's (config ``resize_filter``): AGW and MMN resize with PIL's
LANCZOS (``Image.ANTIALIAS``), MPANet and the two-stream network with torchvision's default, PIL
bilinear. Resizing goes through ``mmcv.imresize`` with its Pillow backend, which is PIL's own
``Image.resize`` (bit-identical, tested); its OpenCV backend does not low-pass filter when
shrinking and differs from PIL by up to 138 grey levels, so it is not used.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from protocols.datasets.base import DatasetLayoutError, ImageRecord, Modality

# torchvision.transforms.Resize's default on PIL images: PIL bilinear (with PIL's antialiasing).
DEFAULT_RESIZE_FILTER = 'bilinear'
# mmcv's names for PIL's filters ('lanczos' is what PIL < 10 called ANTIALIAS).
RESIZE_FILTERS = ('nearest', 'bilinear', 'bicubic', 'box', 'lanczos', 'hamming')
KEY = re.compile(r'[0-9a-f]{20}')
TMP_SUFFIX = '.npy.tmp'
# An unfinished write younger than this may still be running in another process.
TMP_GRACE_S = 3600.0


def check_resize_filter(name: str) -> str:
    if name not in RESIZE_FILTERS:
        raise ValueError(
            f'resize_filter = {name!r}; choose one of {", ".join(RESIZE_FILTERS)} '
            f"(PIL's filters; 'lanczos' is the official code's Image.ANTIALIAS)"
        )
    return name


def default_cache_dir() -> Path:
    return Path(os.environ.get('VIREID_CACHE', Path.home() / '.cache' / 'vireid'))


def cache_dir_of(cfg: Mapping[str, Any]) -> Path:
    """Where a config's runs cache their images: its ``cache_dir``, else ``$VIREID_CACHE``, else
    ``~/.cache/vireid``."""
    configured = cfg.get('cache_dir')
    return Path(configured).expanduser() if configured else default_cache_dir()


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


def npy_bytes(images: int, size: Sequence[int]) -> int:
    """Exact size of the ``.npy`` file of ``images`` uint8 images of ``size`` (H, W), header
    included."""
    shape = (int(images), int(size[0]), int(size[1]), 3)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {'descr': '|u1', 'fortran_order': False, 'shape': shape}
    )
    return len(header.getvalue()) + int(np.prod(shape))


def _describe(records: Sequence[ImageRecord]) -> dict[str, int]:
    visible = sum(r.modality == Modality.VISIBLE for r in records)
    return {
        'images': len(records),
        'ids': len({r.pid for r in records}),
        'visible': visible,
        'infrared': len(records) - visible,
    }


def _write_meta(cache_dir: Path, key: str, meta: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix='.json.tmp')
    with os.fdopen(fd, 'w') as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    os.replace(tmp, cache_dir / f'{key}.json')


def _touch(path: Path) -> None:
    """Record a use (the metadata file's mtime is the entry's last use); a read-only cache is
    fine."""
    try:
        os.utime(path)
    except OSError:
        pass


def load_images(
    root: str | Path,
    records: Sequence[ImageRecord],
    size: Sequence[int],
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    resize_filter: str = DEFAULT_RESIZE_FILTER,
    label: str | None = None,
) -> np.ndarray:
    """All ``records`` decoded to ``[N, H, W, 3]`` uint8, from the cache when it is there.

    ``label`` says what the list is (e.g. ``sysu train``) in ``vireid cache list``.
    """
    check_resize_filter(resize_filter)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = cache_key(root, records, size, resize_filter)
    file = cache_dir / f'{key}.npy'
    shape = (len(records), int(size[0]), int(size[1]), 3)
    if file.is_file():
        arr = np.load(file, mmap_mode='r')
        if arr.shape == shape:
            _touch(cache_dir / f'{key}.json')
            return arr
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Decoded straight into the file (no second copy in memory), written under a temporary name
    # and renamed: a concurrent reader never sees a half-written entry.
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=TMP_SUFFIX)
    os.close(fd)
    try:
        if len(records):
            arr = np.lib.format.open_memmap(tmp, mode='w+', dtype=np.uint8, shape=shape)

            def fill(i: int) -> None:
                arr[i] = decode(root, records[i], size, resize_filter)

            # PIL releases the GIL while decoding and resizing, so threads scale.
            with ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as pool:
                list(pool.map(fill, range(len(records))))
            arr.flush()
            del arr
        else:
            with open(tmp, 'wb') as f:  # np.save(name) would append '.npy' to the name
                np.save(f, np.empty(shape, np.uint8))
        meta = {
            'format': 1,
            'root': str(Path(root).resolve()),
            'label': label,
            'size': [shape[1], shape[2]],
            'resize_filter': resize_filter,
            **_describe(records),
            'bytes': os.path.getsize(tmp),
            'created': dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds'),
        }
        os.replace(tmp, file)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _write_meta(cache_dir, key, meta)
    return np.load(file, mmap_mode='r')


# --------------------------------------------------------------------------------------------------
# Predicting a config's entries (the preflight's disk check)


@dataclass(frozen=True)
class PlannedEntry:
    """One cache entry a config's run will use: which list, how many images, at what size."""

    part: str  # 'train' | 'test'
    images: int
    size: tuple[int, int]
    resize_filter: str
    key: str | None = None  # None when predicted from the released counts (no files to hash)

    @property
    def bytes(self) -> int:
        return npy_bytes(self.images, self.size)

    def present(self, cache_dir: str | Path) -> bool:
        """Whether this entry is already in ``cache_dir`` (never true without a key)."""
        return self.key is not None and (Path(cache_dir) / f'{self.key}.npy').is_file()


def _released_counts(name: str, protocol: Mapping[str, Any]) -> tuple[int, int]:
    """(training images, test images) of the released dataset, from :mod:`protocols.counts`."""
    from protocols import counts
    from protocols.datasets.sysu import GALLERY_CAMS, INFRARED_CAMS

    if name == 'sysu':
        cams = {cam for mode in protocol['modes'] for cam in GALLERY_CAMS[mode]}
        test = sum(counts.SYSU_TEST_IMAGES[c] for c in (*INFRARED_CAMS, *sorted(cams)))
        return counts.SYSU_TRAIN.visible + counts.SYSU_TRAIN.infrared, test
    if name == 'regdb':
        both = 2 * counts.REGDB_IMAGES_PER_ID
        return counts.REGDB_TRAIN_IDS * both, counts.REGDB_TEST_IDS * both
    raise ValueError(
        f'no released image counts for dataset {name!r}; pass its dataset index '
        '(protocols.datasets.load_dataset(name, root)) to predict its cache size'
    )


def cache_entries(cfg: Mapping[str, Any], dataset_index: Any = None) -> list[PlannedEntry]:
    """The cache entries a run of ``cfg`` uses: its training images and its test images.

    ``dataset_index`` is the dataset as read from disk (``protocols.datasets.load_dataset``); the
    entries then carry their cache key, so :meth:`PlannedEntry.present` tells which exist. Without
    it (``None``) the counts of the released dataset are used. A RegDB config is one split (its
    ``protocol.split``); the ten splits of a leaderboard are ten configs.
    """
    from protocols.evaluation import check_protocol, test_records

    size = (int(cfg['input_size'][0]), int(cfg['input_size'][1]))
    resize_filter = check_resize_filter(cfg.get('resize_filter', DEFAULT_RESIZE_FILTER))
    name = cfg['protocol']['dataset']
    protocol = check_protocol(name, cfg['protocol'])
    if dataset_index is None:
        n_train, n_test = _released_counts(name, protocol)
        return [
            PlannedEntry('train', n_train, size, resize_filter),
            PlannedEntry('test', n_test, size, resize_filter),
        ]
    if dataset_index.name != name:
        raise ValueError(
            f'the config scores {name!r} but the dataset index given is {dataset_index.name!r}'
        )
    if 'split' in protocol:
        train = dataset_index.train_set(protocol['split']).records
    else:
        train = dataset_index.train_set().records
    test = test_records(dataset_index, None, protocol)
    out = []
    for part, records in (('train', train), ('test', test)):
        try:
            key = cache_key(dataset_index.root, records, size, resize_filter)
        except OSError:  # a listed image is missing: the data check reports it
            key = None
        out.append(PlannedEntry(part, len(records), size, resize_filter, key))
    return out


def cache_bytes(cfg: Mapping[str, Any], dataset_index: Any = None) -> int:
    """Bytes that the cache entries of a run of ``cfg`` take on disk (:func:`cache_entries`).

    ``cfg`` is a loaded config (``input_size``, ``resize_filter``, ``protocol``); ``dataset_index``
    the dataset read from disk, or ``None`` for the released dataset's counts. Entries already in
    the cache count too (see :meth:`PlannedEntry.present` for what is still to write), and configs
    with the same input size and resize filter share entries: to size a leaderboard, add up the
    distinct entries (``(part, images, size, resize_filter, key)``) of all its runs. Example:
    AGW's SYSU-MM01 config (288 x 144) takes 4,250,921,600 bytes for its 34,167 training images
    and 1,316,072,576 bytes for its 10,578 test images.
    """
    return sum(e.bytes for e in cache_entries(cfg, dataset_index))


# --------------------------------------------------------------------------------------------------
# Listing and clearing (vireid cache list|clear)


@dataclass(frozen=True)
class CacheEntry:
    """One entry found in a cache folder."""

    key: str
    path: Path  # the .npy file
    bytes: int  # .npy and .json together
    shape: tuple[int, ...] | None  # None when the header cannot be read
    meta: dict[str, Any]  # empty for entries written before the metadata existed
    last_use: float  # POSIX time

    @property
    def files(self) -> list[Path]:
        meta = self.path.with_suffix('.json')
        return [self.path] + ([meta] if meta.is_file() else [])

    @property
    def size(self) -> tuple[int, int] | None:
        return None if self.shape is None or len(self.shape) != 4 else self.shape[1:3]


def _shape(path: Path) -> tuple[int, ...] | None:
    try:
        with open(path, 'rb') as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, _ = np.lib.format.read_array_header_1_0(f)
            else:
                shape, _, _ = np.lib.format.read_array_header_2_0(f)
        return tuple(int(s) for s in shape)
    except (OSError, ValueError):
        return None


def _entry(path: Path) -> CacheEntry:
    key = path.stem
    meta_file = path.with_suffix('.json')
    meta: dict[str, Any] = {}
    size = path.stat().st_size
    last_use = path.stat().st_mtime
    if meta_file.is_file():
        try:
            loaded = json.loads(meta_file.read_text())
            meta = loaded if isinstance(loaded, dict) else {}
        except ValueError:
            meta = {}
        size += meta_file.stat().st_size
        last_use = max(last_use, meta_file.stat().st_mtime)
    return CacheEntry(key, path, size, _shape(path), meta, last_use)


def list_entries(cache_dir: str | Path | None = None) -> list[CacheEntry]:
    """Every entry of ``cache_dir`` (default :func:`default_cache_dir`), least recently used
    first."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if not folder.is_dir():
        return []
    found = [
        _entry(p)
        for p in folder.iterdir()
        if p.suffix == '.npy' and KEY.fullmatch(p.stem) and p.is_file() and not p.is_symlink()
    ]
    return sorted(found, key=lambda e: (e.last_use, e.key))


def unfinished_writes(cache_dir: str | Path | None = None) -> list[Path]:
    """Temporary files of writes that did not finish (a killed run), or are still running."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.name.endswith((TMP_SUFFIX, '.json.tmp')) and p.is_file()
    )


def select_entries(
    cache_dir: str | Path,
    names: Sequence[str] = (),
    *,
    older_than_days: float | None = None,
    everything: bool = False,
) -> list[CacheEntry]:
    """The entries ``vireid cache clear`` removes; every name is checked before anything is chosen.

    ``names`` are keys (or a unique start of one, at least 6 characters) or paths of an entry's
    ``.npy``/``.json`` file; a path outside ``cache_dir`` or a name matching no entry is a
    ValueError naming it.
    """
    folder = Path(cache_dir)
    entries = list_entries(folder)
    if everything:
        return entries
    if older_than_days is not None:
        if older_than_days < 0:
            raise ValueError(f'--older-than must be a number of days >= 0, got {older_than_days}')
        limit = time.time() - older_than_days * 86400
        return [e for e in entries if e.last_use < limit]
    by_key = {e.key: e for e in entries}
    chosen: dict[str, CacheEntry] = {}
    problems = []
    base = folder.resolve()
    for name in names:
        looks_like_path = os.sep in name or name.endswith(('.npy', '.json'))
        if looks_like_path:
            path = Path(name).expanduser().resolve()
            if not path.is_relative_to(base):
                problems.append(
                    f'{name} is outside the cache folder {base}; only its entries are removed'
                )
                continue
            key = path.name.split('.')[0]
        else:
            key = name
        matches = [k for k in by_key if k.startswith(key)] if len(key) >= 6 else []
        if key in by_key:
            matches = [key]
        if len(matches) != 1:
            why = 'matches several entries' if matches else 'is not an entry'
            problems.append(f'{name} {why} of {base} (see vireid cache list)')
            continue
        chosen[matches[0]] = by_key[matches[0]]
    if problems:
        raise ValueError('; '.join(problems) + '; nothing removed')
    return sorted(chosen.values(), key=lambda e: (e.last_use, e.key))


def remove_entries(entries: Sequence[CacheEntry]) -> int:
    """Delete the files of ``entries``; return the bytes freed. A run that has an entry open keeps
    reading it (the system frees the space when it closes it)."""
    freed = 0
    for entry in entries:
        for path in entry.files:
            try:
                size = path.stat().st_size
                path.unlink()
                freed += size
            except FileNotFoundError:  # removed meanwhile by another process
                pass
    return freed


def stale_writes(cache_dir: str | Path | None = None) -> list[Path]:
    """Unfinished writes older than :data:`TMP_GRACE_S`: left by a run that was killed."""
    limit = time.time() - TMP_GRACE_S
    return [p for p in unfinished_writes(cache_dir) if p.stat().st_mtime < limit]
