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
import errno
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from harness.errors import HarnessError
from protocols.datasets.base import DatasetLayoutError, ImageRecord, Modality

# torchvision.transforms.Resize's default on PIL images: PIL bilinear (with PIL's antialiasing).
DEFAULT_RESIZE_FILTER = 'bilinear'
# mmcv's names for PIL's filters ('lanczos' is what PIL < 10 called ANTIALIAS).
RESIZE_FILTERS = ('nearest', 'bilinear', 'bicubic', 'box', 'lanczos', 'hamming')
KEY = re.compile(r'[0-9a-f]{20}')
TMP_SUFFIX = '.npy.tmp'
# An unfinished write younger than this may still be running in another process.
TMP_GRACE_S = 3600.0


class CacheSpaceError(HarnessError):
    """The cache folder's disk has no room for an entry (nothing was left behind)."""


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
    # os.fsencode: the bytes of the names on disk, whatever they are (UTF-8 names hash as before).
    h = hashlib.sha1(os.fsencode(f'{Path(root).resolve()}|{tuple(size)}|{resize_filter}|v2'))
    for r in records:
        st = (Path(root) / r.path).stat()
        h.update(os.fsencode(f'{r.path}|{st.st_size}|{st.st_mtime_ns}\n'))
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


def _npy_header(shape: tuple[int, ...]) -> bytes:
    """The ``.npy`` header of a uint8 array of ``shape`` (format 1.0, as ``np.save`` writes it)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {'descr': '|u1', 'fortran_order': False, 'shape': shape}
    )
    return header.getvalue()


def npy_bytes(images: int, size: Sequence[int]) -> int:
    """Exact size of the ``.npy`` file of ``images`` uint8 images of ``size`` (H, W), header
    included."""
    shape = (int(images), int(size[0]), int(size[1]), 3)
    return len(_npy_header(shape)) + int(np.prod(shape))


def _gb(n: int) -> str:
    return f'{n / 1e9:.2f} GB' if n >= 1e8 else f'{n / 1e6:.1f} MB'


def _reserve(fd: int, nbytes: int, folder: Path) -> None:
    """Claim ``nbytes`` on disk for the file ``fd`` now, so that a full disk is an error here
    (ENOSPC) rather than a SIGBUS that kills the process while it writes into the memory map."""
    try:
        os.posix_fallocate(fd, 0, nbytes)
    except OSError as err:
        if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
        # A file system without fallocate: its free space is the best check there is.
        if shutil.disk_usage(folder).free < nbytes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)) from None


def _no_space(folder: Path, nbytes: int, label: str | None) -> CacheSpaceError:
    free = shutil.disk_usage(folder).free
    what = f'the {label} images' if label else 'an image cache entry'
    return CacheSpaceError(
        f'not enough free space in the cache folder {folder} for {what}: it needs {nbytes} bytes '
        f'({_gb(nbytes)}), {free} bytes ({_gb(free)}) are free. Free space there (`vireid cache '
        f'list`, `vireid cache clear --older-than DAYS`) or put the cache on a disk with room '
        f'(cache_dir in the config, or $VIREID_CACHE; docs/cache.md); nothing was left behind'
    )


def _describe(records: Sequence[ImageRecord]) -> dict[str, int]:
    visible = sum(r.modality == Modality.VISIBLE for r in records)
    return {
        'images': len(records),
        'ids': len({r.pid for r in records}),
        'visible': visible,
        'infrared': len(records) - visible,
    }


def _write_meta(cache_dir: Path, key: str, meta: dict[str, Any]) -> None:
    target = cache_dir / f'{key}.json'
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix='.json.tmp')
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(meta, f, indent=1, sort_keys=True)
        os.replace(tmp, target)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise OSError(err.errno, err.strerror, str(target)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
        try:
            arr = np.load(file, mmap_mode='r', allow_pickle=False)
        except (OSError, ValueError, EOFError):
            arr = None  # a damaged entry (cut short, overwritten) is decoded again
        if arr is not None and arr.shape == shape and arr.dtype == np.uint8:
            _touch(cache_dir / f'{key}.json')
            return arr
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Decoded straight into the file (no second copy in memory), written under a temporary name
    # and renamed: a concurrent reader never sees a half-written entry. The whole file is claimed
    # on disk first, so a full disk is found before any image is decoded.
    header = _npy_header(shape)
    nbytes = len(header) + int(np.prod(shape))
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=TMP_SUFFIX)
    try:
        try:
            _reserve(fd, nbytes, cache_dir)
            os.write(fd, header)  # a few hundred bytes: one write
        finally:
            os.close(fd)
        if len(records):
            arr = np.memmap(tmp, dtype=np.uint8, mode='r+', offset=len(header), shape=shape)

            def fill(i: int) -> None:
                arr[i] = decode(root, records[i], size, resize_filter)

            # PIL releases the GIL while decoding and resizing, so threads scale.
            with ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as pool:
                list(pool.map(fill, range(len(records))))
            arr.flush()
            del arr
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
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        Path(tmp).unlink(missing_ok=True)
        raise _no_space(cache_dir, nbytes, label) from None
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
