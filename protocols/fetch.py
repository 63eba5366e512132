"""``vireid data fetch``: download a user-supplied Google Drive archive (gdown), check its md5,
extract it.

Nothing is downloaded unless the user names the file: the datasets' licences require requesting them
from their authors, so the harness never knows their links.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import re
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

_DRIVE_ID = re.compile(r'^[-\w]{10,}$')
_MD5 = re.compile(r'^[0-9a-fA-F]{32}$')


def md5sum(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def download(source: str, out: str | Path) -> Path:
    """Download a Google Drive file (share URL or file id) into folder ``out``; returns the file
    path."""
    import gdown  # imported here so the rest of the harness does not need it

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    kwargs: dict = dict(
        output=str(out) + os.sep, quiet=False
    )  # trailing separator: keep the remote name
    if source.startswith(('http://', 'https://')):
        kwargs['url'] = source
        params = inspect.signature(gdown.download).parameters
        # gdown < 6 needs fuzzy=True to accept ".../file/d/<id>/view" share links; gdown 6 always
        # parses them.
        if 'fuzzy' in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
            kwargs['fuzzy'] = True
    elif _DRIVE_ID.match(source):
        kwargs['id'] = source
    else:
        raise ValueError(
            f'{source!r} is neither an http(s) URL nor a Google Drive file id; pass the share link '
            f'(https://drive.google.com/file/d/<id>/view) or the id itself'
        )
    result = gdown.download(**kwargs)
    if not result:
        raise RuntimeError(
            f'gdown could not download {source}; check that the link is shared publicly and that '
            'the Drive quota is not exceeded, or download it by hand and pass the file to extract()'
        )
    return Path(result)


def _check_member(name: str, dest: Path, archive: Path) -> None:
    pure = PurePosixPath(name.replace('\\', '/'))
    target = (dest / pure).resolve()
    if (
        pure.is_absolute()
        or re.match(r'^[A-Za-z]:', name)
        or '..' in pure.parts
        or (target != dest and dest not in target.parents)
    ):
        raise ValueError(
            f'refusing to extract {archive}: member {name!r} would be written outside {dest} '
            f'(absolute path or ".."); the archive is unsafe, re-create it with relative paths'
        )


def extract(archive: str | Path, dest: str | Path) -> list[str]:
    """Extract a zip or tar(.gz/.bz2/.xz) archive into ``dest``, refusing any member that escapes
    it.

    Returns the member names. Every member is checked before anything is written.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    dest = dest.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            for name in names:
                _check_member(name, dest, archive)
            zf.extractall(dest)
        return names
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for m in members:
                _check_member(m.name, dest, archive)
                if m.issym() or m.islnk():
                    link = (
                        m.linkname if m.islnk() else str(PurePosixPath(m.name).parent / m.linkname)
                    )
                    _check_member(link, dest, archive)
                elif not (m.isfile() or m.isdir()):
                    raise ValueError(
                        f'refusing to extract {archive}: member {m.name!r} is a device or fifo'
                    )
            # The 'data' filter is a second guard (links, permissions) where Python provides it.
            if hasattr(tarfile, 'data_filter'):
                tf.extractall(dest, filter='data')
            else:  # pragma: no cover - Python without PEP 706
                tf.extractall(dest)
        return [m.name for m in members]
    raise ValueError(f'{archive} is not a zip or tar archive; it is kept there; extract it by hand')


def fetch(source: str, out: str | Path, md5: str | None = None) -> tuple[Path, list[str]]:
    """Download ``source`` into ``out``, verify ``md5`` (if given), extract into ``out``.

    Returns the downloaded file and the extracted member names. On an md5 mismatch the file is kept
    and a ValueError shows the expected and actual checksums.
    """
    if md5 is not None and not _MD5.match(md5):
        raise ValueError(f'--md5 must be 32 hexadecimal digits, got {md5!r}')
    path = download(source, out)
    if md5 is not None:
        got = md5sum(path)
        if got.lower() != md5.lower():
            raise ValueError(
                f'md5 mismatch for {path}: expected {md5.lower()}, got {got}; the file is kept for '
                f'inspection; re-download it or check the checksum you were given'
            )
    return path, extract(path, out)
