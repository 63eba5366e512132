"""Fetching a released checkpoint: kept from before, or downloaded with gdown (Google Drive), and
the md5 of a file; a release that must be downloaded by hand says where from and where to put it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from harness.official.release import OfficialFetchError, ReleasedCheckpoint

# gdown's (connect, read) timeouts in seconds: offline, the fetch fails at once, not minutes later.
FETCH_TIMEOUT = (10, 60)


def md5_of(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, 'rb') as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _by_hand(rel: ReleasedCheckpoint, dest: Path) -> str:
    note = f' ({rel.note})' if rel.note else ''
    return (
        f'download it by hand from {rel.url}{note} and either put it at {dest} (then run the '
        f'same command again) or pass --official-checkpoint {rel.method}:{rel.target}=PATH'
    )


def gdown_download(file_id: str, output: str) -> str | None:
    """gdown's download of Drive file ``file_id`` to ``output`` (a seam the tests replace)."""
    import gdown

    return gdown.download(id=file_id, output=output, quiet=True, timeout=FETCH_TIMEOUT)


def fetch_released(rel: ReleasedCheckpoint, downloads: str | Path) -> Path:
    """The file of ``rel`` under ``downloads/<method>/``: kept from before, or fetched now with
    gdown (a Drive release). A by-hand release, or a failed fetch, raises
    :class:`OfficialFetchError` with the URL and where to put the file."""
    dest = Path(downloads) / rel.method / rel.filename
    if dest.is_file():
        return dest
    if not rel.gdrive_id:
        raise OfficialFetchError(
            f'the released {rel.method} {rel.target} checkpoint is not on '
            f'this machine and is not fetched automatically: ' + _by_hand(rel, dest)
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + '.part')
    try:
        got = gdown_download(rel.gdrive_id, str(part))
    except Exception as err:  # gdown raises requests', its own and OS errors alike
        cause = f'{type(err).__name__}: {" ".join(str(err).split())[:300]}'
        got = None
    else:
        cause = 'gdown returned no file'
    if not got or not part.is_file() or part.stat().st_size == 0:
        part.unlink(missing_ok=True)
        raise OfficialFetchError(
            f'could not fetch the released {rel.method} {rel.target} '
            f'checkpoint from Google Drive ({cause}); ' + _by_hand(rel, dest)
        )
    os.replace(part, dest)
    return dest
