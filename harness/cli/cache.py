"""``vireid cache list|clear``: the decode-once image cache (``$VIREID_CACHE``, default
``~/.cache/vireid``), its entries and their sizes, and removing them."""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

from tabulate import tabulate

from harness.cli.options import float_range
from harness.data.cache import (
    CacheEntry,
    default_cache_dir,
    list_entries,
    remove_entries,
    select_entries,
    stale_locks,
    stale_writes,
    unfinished_writes,
)


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        'cache',
        help='list or clear the decode-once image cache',
        description='The decode-once image cache: every image of a dataset root that a run reads '
        "(training and test lists, every RegDB split), resized to the config's input size, in one "
        'uint8 .npy file per (dataset root, input size, resize filter); each run reads its lists '
        'as rows of it. It lives in --cache-dir, else $VIREID_CACHE, else ~/.cache/vireid '
        '(docs/cache.md).',
    )
    sub = p.add_subparsers(dest='action', metavar='ACTION', required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        '--cache-dir',
        type=Path,
        metavar='DIR',
        help='the cache folder (default: $VIREID_CACHE, else ~/.cache/vireid)',
    )

    listing = sub.add_parser(
        'list', parents=[common], help='entries: what they hold, size on disk, last use'
    )
    listing.set_defaults(func=run_list)

    clear = sub.add_parser(
        'clear',
        parents=[common],
        help='remove entries (each one removed is named)',
        description='Remove cache entries; each one removed is printed with its size. A run that '
        'needs a removed entry decodes its images again. Other files of the folder (e.g. '
        'throughput.json) are never touched.',
    )
    which = clear.add_mutually_exclusive_group(required=True)
    which.add_argument(
        'entries',
        nargs='*',
        default=[],
        metavar='ENTRY',
        help='entry keys as `vireid cache list` shows them (or a unique start, 6+ characters), '
        'or paths of their .npy/.json files',
    )
    which.add_argument(
        '--older-than',
        type=float_range(0),
        metavar='DAYS',
        help='every entry not used for more than DAYS days',
    )
    which.add_argument(
        '--all',
        action='store_true',
        help='every entry, and unfinished writes left by killed runs (older than an hour) with '
        'their unused writer locks',
    )
    clear.add_argument(
        '--dry-run', action='store_true', help='say what would be removed; remove nothing'
    )
    clear.set_defaults(func=run_clear)
    return p


def _gb(n: int) -> str:
    return f'{n / 1e9:.2f} GB' if n >= 1e8 else f'{n / 1e6:.1f} MB'


def _when(t: float) -> str:
    days = (time.time() - t) / 86400
    ago = 'today' if days < 1 else f'{int(days)} day{"s" if int(days) != 1 else ""} ago'
    return f'{dt.datetime.fromtimestamp(t):%Y-%m-%d %H:%M} ({ago})'


def _row(e: CacheEntry) -> dict[str, str]:
    size = e.size
    meta = e.meta
    images = meta.get('images', e.shape[0] if e.shape else '?')
    return {
        'entry': e.key,
        'holds': meta.get('label') or '?',
        'dataset root': meta.get('root', '?'),
        'images': images,
        'input HxW': f'{size[0]}x{size[1]}' if size else '?',
        'filter': meta.get('resize_filter', '?'),
        'size': _gb(e.bytes),
        'last use': _when(e.last_use),
    }


def run_list(args: argparse.Namespace) -> int:
    folder = args.cache_dir or default_cache_dir()
    entries = list_entries(folder)
    if not folder.is_dir():
        print(f'{folder}: no cache folder yet (it is made by the first run)')
        return 0
    if entries:
        print(tabulate([_row(e) for e in entries], headers='keys'))
        print(f'\n{len(entries)} entries, {_gb(sum(e.bytes for e in entries))} in {folder}')
        if any(not e.meta for e in entries):
            print(
                '"?": entry written before entries recorded what they hold; the input size comes '
                'from the file itself'
            )
    else:
        print(f'{folder}: no cache entries')
    unfinished = unfinished_writes(folder)
    if unfinished:
        size = sum(p.stat().st_size for p in unfinished)
        print(
            f'{len(unfinished)} unfinished write(s), {_gb(size)} (a running or killed run): '
            + ', '.join(p.name for p in unfinished)
        )
    return 0


def run_clear(args: argparse.Namespace) -> int:
    folder = args.cache_dir or default_cache_dir()
    if args.entries and not folder.is_dir():
        raise ValueError(
            f'{folder}: no cache folder, so no entry {args.entries[0]}; nothing removed'
        )
    chosen = select_entries(
        folder, args.entries, older_than_days=args.older_than, everything=args.all
    )
    stale = stale_writes(folder) if args.all else []
    locks = stale_locks(folder) if args.all else []
    verb = 'would remove' if args.dry_run else 'removed'
    if not chosen and not stale and not locks:
        print(f'nothing to remove in {folder}')
        return 0
    total = 0
    for entry in chosen:
        total += entry.bytes
        label = entry.meta.get('label') or 'entry'
        size = entry.size
        shape = f', {size[0]}x{size[1]}' if size else ''
        used = _when(entry.last_use)
        print(f'{verb} {entry.key} ({label}{shape}, {_gb(entry.bytes)}, last use {used})')
        if not args.dry_run:
            remove_entries([entry])
    for path in stale:
        size = path.stat().st_size
        total += size
        print(f'{verb} unfinished write {path.name} ({_gb(size)})')
        if not args.dry_run:
            path.unlink(missing_ok=True)
    for path in locks:
        print(f'{verb} unused writer lock {path.name}')
        if not args.dry_run:
            path.unlink(missing_ok=True)
    freed = 'would free' if args.dry_run else 'freed'
    print(f'{freed} {_gb(total)} in {folder}')
    return 0
