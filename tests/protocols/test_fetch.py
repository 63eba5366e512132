"""``vireid data fetch`` / protocols.fetch with gdown replaced by a local fake (no network)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

import gdown
import pytest

import harness.cli
from protocols.fetch import extract, fetch


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, 'w') as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _tar(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, 'w:gz') as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return path


@pytest.fixture
def fake_gdown(monkeypatch: pytest.MonkeyPatch):
    """Replace gdown.download by a copy of ``state['archive']``; record the keyword arguments."""
    state: dict = {'calls': []}

    def download(url=None, output=None, quiet=False, id=None, **kwargs):
        state['calls'].append(dict(url=url, output=output, quiet=quiet, id=id, **kwargs))
        src = Path(state['archive'])
        dst = Path(output) / src.name if str(output).endswith(os.sep) else Path(output)
        shutil.copyfile(src, dst)
        return str(dst)

    monkeypatch.setattr(gdown, 'download', download)
    return state


def test_fetch_zip_with_md5(tmp_path: Path, fake_gdown: dict) -> None:
    archive = _zip(
        tmp_path / 'SYSU-MM01.zip', {'SYSU-MM01/exp/test_id.txt': b'1,2', 'SYSU-MM01/cam1/': b''}
    )
    fake_gdown['archive'] = archive
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    out = tmp_path / 'data'
    path, names = fetch(
        'https://drive.google.com/file/d/abcdefghijklmnop/view', out, md5=md5.upper()
    )
    assert path == out / 'SYSU-MM01.zip' and path.read_bytes() == archive.read_bytes()
    assert (out / 'SYSU-MM01' / 'exp' / 'test_id.txt').read_text() == '1,2'
    assert 'SYSU-MM01/exp/test_id.txt' in names
    call = fake_gdown['calls'][0]
    assert (
        call['url'].startswith('https://drive.google.com/')
        and call['id'] is None
        and call['quiet'] is False
    )
    assert call['fuzzy'] is True  # accepted by this fake (**kwargs), as by gdown < 6


def test_fetch_by_id_tar(tmp_path: Path, fake_gdown: dict) -> None:
    fake_gdown['archive'] = _tar(
        tmp_path / 'RegDB.tar.gz', {'RegDB/idx/test_visible_1.txt': b'x 0\n'}
    )
    fetch('1AbCdEfGhIjKlMnOpQrStUv', tmp_path / 'out')
    assert (tmp_path / 'out' / 'RegDB' / 'idx' / 'test_visible_1.txt').read_text() == 'x 0\n'
    assert (
        fake_gdown['calls'][0]['id'] == '1AbCdEfGhIjKlMnOpQrStUv'
        and fake_gdown['calls'][0]['url'] is None
    )


def test_md5_mismatch_keeps_file(tmp_path: Path, fake_gdown: dict) -> None:
    fake_gdown['archive'] = _zip(tmp_path / 'a.zip', {'a/b.txt': b'b'})
    out = tmp_path / 'out'
    with pytest.raises(ValueError, match=r'md5 mismatch .* expected 0{32}, got [0-9a-f]{32}'):
        fetch('https://drive.google.com/uc?id=abcdefghijkl', out, md5='0' * 32)
    assert (out / 'a.zip').is_file() and not (out / 'a').exists()  # kept, not extracted
    with pytest.raises(ValueError, match='32 hexadecimal'):
        fetch('https://drive.google.com/uc?id=abcdefghijkl', out, md5='xyz')


@pytest.mark.parametrize('name', ['../evil.txt', '/tmp/evil.txt', 'ok/../../evil.txt'])
def test_zip_traversal_refused(tmp_path: Path, name: str) -> None:
    archive = _zip(tmp_path / 'bad.zip', {'good.txt': b'g', name: b'evil'})
    dest = tmp_path / 'dest'
    with pytest.raises(ValueError, match='outside'):
        extract(archive, dest)
    assert not (dest / 'good.txt').exists() and not (tmp_path / 'evil.txt').exists()


def test_tar_traversal_and_links_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match='outside'):
        extract(_tar(tmp_path / 'a.tar.gz', {'../evil.txt': b'e'}), tmp_path / 'd1')
    with pytest.raises(ValueError, match='outside'):
        extract(
            _tar(tmp_path / 'b.tar.gz', {'x.txt': b'x'}, links={'link': '../../etc/passwd'}),
            tmp_path / 'd2',
        )
    assert not (tmp_path / 'd2' / 'x.txt').exists()
    names = extract(
        _tar(tmp_path / 'c.tar.gz', {'d/x.txt': b'x'}, links={'d/y': 'x.txt'}), tmp_path / 'd3'
    )
    assert sorted(names) == ['d/x.txt', 'd/y'] and (tmp_path / 'd3' / 'd' / 'y').read_text() == 'x'


def test_not_an_archive(tmp_path: Path, fake_gdown: dict) -> None:
    (tmp_path / 'notes.txt').write_text('hello')
    fake_gdown['archive'] = tmp_path / 'notes.txt'
    with pytest.raises(ValueError, match='not a zip or tar archive'):
        fetch('https://drive.google.com/uc?id=abcdefghijkl', tmp_path / 'out')
    with pytest.raises(ValueError, match='neither an http'):
        fetch('not a link!', tmp_path / 'out')


def test_download_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gdown, 'download', lambda **kw: None)
    with pytest.raises(RuntimeError, match='could not download'):
        fetch('abcdefghijklmnop', tmp_path)


def test_cli_fetch(
    tmp_path: Path, fake_gdown: dict, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setattr(harness.cli, 'SUBCOMMANDS', ('data', 'score'))
    fake_gdown['archive'] = _zip(tmp_path / 'RegDB.zip', {'RegDB/Visible/1/a.bmp': b'a'})
    out = tmp_path / 'out'
    assert (
        harness.cli.main(
            ['data', 'fetch', 'https://drive.google.com/uc?id=abcdefghijkl', '--out', str(out)]
        )
        == 0
    )
    assert (out / 'RegDB' / 'Visible' / '1' / 'a.bmp').read_bytes() == b'a'
    assert 'RegDB' in capsys.readouterr().out
    assert (
        harness.cli.main(['data', 'fetch', 'abcdefghijkl', '--out', str(out), '--md5', 'f' * 32])
        == 2
    )
    assert 'md5 mismatch' in capsys.readouterr().err


def test_cli_synth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import protocols.datasets.synthetic as synthetic
    from protocols.datasets.synthetic.parallel import default_workers

    calls = []

    def generate(dataset, out, seed=0, **kw):
        calls.append((dataset, Path(out), seed, kw))
        (Path(out) / synthetic.MARKER).touch()  # what the command reads to say what it wrote
        return Path(out)

    monkeypatch.setattr(synthetic, 'generate', generate)
    monkeypatch.setattr(harness.cli, 'SUBCOMMANDS', ('data', 'score'))
    assert (
        harness.cli.main(
            [
                'data',
                'synth',
                '--dataset',
                'regdb',
                '--out',
                str(tmp_path),
                '--ids',
                '12',
                '--seed',
                '3',
            ]
        )
        == 0
    )
    # gap None: the generator default; workers: one process per CPU unless --workers says
    assert calls == [('regdb', tmp_path, 3, {'ids': 12, 'gap': None, 'workers': default_workers()})]
    assert 'vireid data check --dataset regdb' in capsys.readouterr().out
    assert (
        harness.cli.main(
            ['data', 'synth', '--dataset', 'sysu', '--out', str(tmp_path), '--gap', '0.5']
        )
        == 0
    )
    assert calls[-1] == ('sysu', tmp_path, 0, {'gap': 0.5, 'workers': default_workers()})
