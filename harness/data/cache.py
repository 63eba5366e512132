"""Decode-once image cache: every image of a dataset root resized to an input size, stored once.

Official repositories decode JPEGs with PIL in every epoch (or, AGW and MMN, pre-resize into .npy
files by hand). Here the first run that reads a dataset root at an input size and resize filter
decodes every image of that root's lists once, in parallel threads, into one *entry*
``<cache_dir>/<key>.npy``; every list of that root (training, test, each RegDB split, each SYSU-MM01
search mode) is then rows of it, read through a memory map (:class:`CachedImages`). The key hashes
the images' paths, file sizes and mtimes, so a changed dataset is never served from a stale cache.

One entry is that ``.npy`` file, ``N x H x W x 3`` uint8 (the N images of :func:`image_pool` in
path order, H x W the config's ``input_size``) after a 128-byte header, plus ``<key>.json`` saying
what it holds and when it was last used. Sharing is what keeps it small: RegDB's ten splits draw
their training and test ids from the same 412 people, so one entry of its 8,240 images serves all
twenty lists (they were twenty entries of 4,120 images each). :func:`cache_bytes` predicts a
config's entry; :func:`list_entries` and :func:`remove_entries` serve ``vireid cache list|clear``
(docs/cache.md). An entry is written under a temporary name and renamed when complete, by one
process at a time (``<key>.lock``): runs started together wait for it instead of each writing one.

The resize filter is the method's (config ``resize_filter``): AGW and MMN resize with PIL's
LANCZOS (``Image.ANTIALIAS``), MPANet and the two-stream network with torchvision's default, PIL
bilinear. Resizing goes through ``mmcv.imresize`` with its Pillow backend, which is PIL's own
``Image.resize`` (bit-identical, tested); its OpenCV backend does not low-pass filter when
shrinking and differs from PIL by up to 138 grey levels, so it is not used.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from harness.errors import HarnessError
from harness.locks import Busy, FileLock, describe_holder, is_locked
from protocols.datasets.base import DatasetLayoutError, ImageRecord, Modality

# torchvision.transforms.Resize's default on PIL images: PIL bilinear (with PIL's antialiasing).
DEFAULT_RESIZE_FILTER = 'bilinear'
# mmcv's names for PIL's filters ('lanczos' is what PIL < 10 called ANTIALIAS).
RESIZE_FILTERS = ('nearest', 'bilinear', 'bicubic', 'box', 'lanczos', 'hamming')
KEY = re.compile(r'[0-9a-f]{20}')
TMP_SUFFIX = '.npy.tmp'
LOCK_SUFFIX = '.lock'  # held by the one process writing an entry
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


def _unique(records: Sequence[ImageRecord]) -> tuple[ImageRecord, ...]:
    """``records``, each path once, in path order: the rows of an entry."""
    by_path: dict[str, ImageRecord] = {}
    for r in records:
        by_path.setdefault(r.path, r)
    return tuple(by_path[p] for p in sorted(by_path))


def image_pool(dataset_index: Any) -> tuple[ImageRecord, ...]:
    """Every image of a dataset root that a protocol list reads, each once, in path order: what the
    one cache entry of that root (at an input size and resize filter) holds, whichever list a run
    reads from it (training or test, any RegDB split, any SYSU-MM01 search mode).

    SYSU-MM01: the images of the train, val and test ids (those of the ids in no list are never
    read); RegDB: every image under ``Visible/`` and ``Thermal/`` (each split draws its training and
    test ids from all 412); LLCM: its training lists and test folders. A run that only tests (a
    re-scored checkpoint) therefore decodes the training images too, once; the entry then serves
    every later run at that size.
    """
    if dataset_index.name == 'sysu':
        return _unique(
            (
                *dataset_index.train_set().records,
                *dataset_index.query_records(),
                *dataset_index.gallery_candidates(),
            )
        )
    return _unique(tuple(dataset_index.records))


def pool_label(dataset_index: Any) -> str:
    """What an entry of :func:`image_pool` holds, as ``vireid cache list`` shows it."""
    return f'{dataset_index.name} (every list)'


def cache_key(
    root: str | Path,
    records: Sequence[ImageRecord],
    size: Sequence[int],
    resize_filter: str = DEFAULT_RESIZE_FILTER,
) -> str:
    """The key of the entry holding ``records`` (each path once, in path order, so their order
    does not matter) at ``size`` with ``resize_filter``: a hash of the root, the size, the filter
    and every image's path, file size and modification time."""
    size = (int(size[0]), int(size[1]))
    # os.fsencode: the bytes of the names on disk, whatever they are (UTF-8 names hash as before).
    h = hashlib.sha1(os.fsencode(f'{Path(root).resolve()}|{size}|{resize_filter}|v3'))
    for r in _unique(records):
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


class CachedImages:
    """The images of one list as ``[N, H, W, 3]`` uint8, in the list's order: rows of a cache
    entry's memory map. ``images[i]`` reads image ``i`` only (as fast as a memory map of the list
    alone would); a slice or ``np.asarray(images)`` reads the rows asked for into memory."""

    def __init__(self, entry: np.ndarray, rows: np.ndarray) -> None:
        self.entry = entry  # the whole entry, memory-mapped
        self.rows = rows  # the entry row of each image of the list

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.entry.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.entry.dtype

    def __getitem__(self, i: Any) -> np.ndarray:
        return self.entry[self.rows[i]]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.asarray(self.entry[self.rows])
        return out if dtype is None else out.astype(dtype, copy=False)


def load_images(
    root: str | Path,
    records: Sequence[ImageRecord],
    size: Sequence[int],
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    resize_filter: str = DEFAULT_RESIZE_FILTER,
    label: str | None = None,
    pool: Sequence[ImageRecord] | None = None,
) -> CachedImages:
    """``records`` at ``size`` (H, W) as uint8 ``[N, H, W, 3]``, read from the cache entry that
    holds ``pool`` (default: ``records`` themselves), which is written first when it is not there.

    The engine's datasets pass :func:`image_pool` of their dataset, so that every list of a dataset
    root reads one entry; ``label`` says what the entry holds in ``vireid cache list``.
    """
    check_resize_filter(resize_filter)
    pool = _unique(records if pool is None else pool)
    row_of = {r.path: i for i, r in enumerate(pool)}
    outside = [r.path for r in records if r.path not in row_of]
    if outside:
        raise ValueError(
            f'{len(outside)} image(s) of the list are not among the images of its cache entry '
            f'(e.g. {outside[0]}); pass a pool that holds every image of the list'
        )
    rows = np.fromiter((row_of[r.path] for r in records), dtype=np.intp, count=len(records))
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    size = (int(size[0]), int(size[1]))
    entry = _open_entry(root, pool, size, cache_dir, workers, resize_filter, label)
    return CachedImages(entry, rows)


def _read_entry(file: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The entry's memory map when it is there and complete."""
    if not file.is_file():
        return None
    try:
        arr = np.load(file, mmap_mode='r', allow_pickle=False)
    except (OSError, ValueError, EOFError):  # damaged (cut short, overwritten): written again
        return None
    return arr if arr.shape == shape and arr.dtype == np.uint8 else None


def _open_entry(
    root: str | Path,
    pool: tuple[ImageRecord, ...],
    size: tuple[int, int],
    cache_dir: Path,
    workers: int | None,
    resize_filter: str,
    label: str | None,
) -> np.ndarray:
    key = cache_key(root, pool, size, resize_filter)
    file = cache_dir / f'{key}.npy'
    shape = (len(pool), *size, 3)
    found = _read_entry(file, shape)
    if found is None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        # One writer per entry: runs started together (a Slurm array of RegDB splits, DDP ranks)
        # wait for it and read its file, rather than each decoding the same images into a
        # temporary file of its own (which the disk check does not count).
        with _writer_lock(cache_dir / f'{key}{LOCK_SUFFIX}', file, label):
            found = _read_entry(file, shape)  # written meanwhile by the process waited for
            if found is None:
                _write_entry(root, pool, size, cache_dir, key, workers, resize_filter, label)
                return np.load(file, mmap_mode='r')
    _touch(cache_dir / f'{key}.json')
    return found


@contextlib.contextmanager
def _writer_lock(path: Path, file: Path, label: str | None) -> Iterator[None]:
    lock = FileLock(path)
    try:
        lock.acquire()
    except Busy:
        print(
            f'[cache] {describe_holder(path)} is writing {file} ({label or "images"}); '
            'waiting for it, then reading that file',
            file=sys.stderr,
            flush=True,
        )
        lock = FileLock(path, blocking=True).acquire()
    try:
        yield
    finally:
        lock.release()


def _write_entry(
    root: str | Path,
    pool: tuple[ImageRecord, ...],
    size: tuple[int, int],
    cache_dir: Path,
    key: str,
    workers: int | None,
    resize_filter: str,
    label: str | None,
) -> None:
    shape = (len(pool), *size, 3)
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
        if len(pool):
            arr = np.memmap(tmp, dtype=np.uint8, mode='r+', offset=len(header), shape=shape)

            def fill(i: int) -> None:
                arr[i] = decode(root, pool[i], size, resize_filter)

            # PIL releases the GIL while decoding and resizing, so threads scale.
            with ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as pool_:
                list(pool_.map(fill, range(len(pool))))
            arr.flush()
            del arr
        meta = {
            'format': 2,
            'root': str(Path(root).resolve()),
            'label': label,
            'size': list(size),
            'resize_filter': resize_filter,
            **_describe(pool),
            'bytes': os.path.getsize(tmp),
            'created': dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds'),
        }
        os.replace(tmp, cache_dir / f'{key}.npy')
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        Path(tmp).unlink(missing_ok=True)
        raise _no_space(cache_dir, nbytes, label) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _write_meta(cache_dir, key, meta)


# --------------------------------------------------------------------------------------------------
# Predicting a config's entry (the preflight's disk check)


@dataclass(frozen=True)
class PlannedEntry:
    """The cache entry a config's runs read: every image of its dataset root
    (:func:`image_pool`) at its input size and resize filter."""

    dataset: str
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


def _released_images(name: str) -> int:
    """Images of :func:`image_pool` on the released dataset, from :mod:`protocols.counts`."""
    from protocols import counts

    if name == 'sysu':
        train = counts.SYSU_TRAIN.visible + counts.SYSU_TRAIN.infrared
        return train + sum(counts.SYSU_TEST_IMAGES.values())
    if name == 'regdb':
        return counts.REGDB_IDS * 2 * counts.REGDB_IMAGES_PER_ID
    raise ValueError(
        f'no released image counts for dataset {name!r}; pass its dataset index '
        '(protocols.datasets.load_dataset(name, root)) to predict its cache size'
    )


def cache_entries(cfg: Mapping[str, Any], dataset_index: Any = None) -> list[PlannedEntry]:
    """The cache entries a run of ``cfg`` reads: one, every image of its dataset root at its input
    size and resize filter, whatever it reads of it (training and test lists, RegDB split, SYSU
    search modes; a run that only tests included).

    ``dataset_index`` is the dataset as read from disk (``protocols.datasets.load_dataset``); the
    entry then carries its cache key, so :meth:`PlannedEntry.present` tells whether it exists.
    Without it (``None``) the counts of the released dataset are used.
    """
    from protocols.evaluation import check_protocol

    size = (int(cfg['input_size'][0]), int(cfg['input_size'][1]))
    resize_filter = check_resize_filter(cfg.get('resize_filter', DEFAULT_RESIZE_FILTER))
    name = cfg['protocol']['dataset']
    check_protocol(name, cfg['protocol'])
    if dataset_index is None:
        return [PlannedEntry(name, _released_images(name), size, resize_filter)]
    if dataset_index.name != name:
        raise ValueError(
            f'the config scores {name!r} but the dataset index given is {dataset_index.name!r}'
        )
    pool = image_pool(dataset_index)
    try:
        key = cache_key(dataset_index.root, pool, size, resize_filter)
    except OSError:  # a listed image is missing: the data check reports it
        key = None
    return [PlannedEntry(name, len(pool), size, resize_filter, key)]


def cache_bytes(cfg: Mapping[str, Any], dataset_index: Any = None) -> int:
    """Bytes that the cache entry of a run of ``cfg`` takes on disk (:func:`cache_entries`).

    ``cfg`` is a loaded config (``input_size``, ``resize_filter``, ``protocol``); ``dataset_index``
    the dataset read from disk, or ``None`` for the released dataset's counts. An entry already in
    the cache counts too (see :meth:`PlannedEntry.present` for what is still to write), and every
    config of a dataset root with the same input size and resize filter reads the same entry: to
    size a leaderboard, add up its runs' distinct entries
    (``sum(e.bytes for e in {e for cfg in cfgs for e in cache_entries(cfg)})``). Example: AGW's
    SYSU-MM01 config (288 x 144) takes 5,566,994,048 bytes for the 44,745 images of the train, val
    and test ids; its RegDB config 1,025,187,968 bytes for 8,240 images, shared by the ten splits.
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
        _remove_lock(entry.path.with_suffix(LOCK_SUFFIX))
    return freed


def _remove_lock(path: Path) -> bool:
    """Remove an entry's writer lock unless a process holds it (writing the entry again)."""
    if not path.is_file() or is_locked(path):
        return False
    path.unlink(missing_ok=True)
    return True


def stale_locks(cache_dir: str | Path | None = None) -> list[Path]:
    """Writer locks of entries that are not there and that no process holds: left by a write that
    was killed (or by an entry removed by hand)."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix == LOCK_SUFFIX
        and KEY.fullmatch(p.stem)
        and not p.with_suffix('.npy').exists()
        and not is_locked(p)
    )


def stale_writes(cache_dir: str | Path | None = None) -> list[Path]:
    """Unfinished writes older than :data:`TMP_GRACE_S`: left by a run that was killed."""
    limit = time.time() - TMP_GRACE_S
    return [p for p in unfinished_writes(cache_dir) if p.stat().st_mtime < limit]
