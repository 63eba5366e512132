"""The decode-once cache: predicted entry sizes equal the files written, entries say what they hold
and when they were last used, and ``vireid cache list|clear`` show and remove only entries."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
import pytest

import harness.cli
from harness.data.cache import (
    cache_bytes,
    cache_dir_of,
    cache_entries,
    list_entries,
    load_images,
    npy_bytes,
)
from harness.data.datasets import VIReIDTestSet, VIReIDTrainSet
from harness.engine.config import load_config
from protocols import counts
from protocols.datasets import load_dataset

METHODS = Path(__file__).resolve().parents[2] / 'methods'
DAY = 86400


def _config(name: str, **changes):
    method = name.split('_')[0]
    cfg = load_config(METHODS / method / 'configs' / f'{name}.py')
    for key, value in changes.items():
        cfg[key] = value
    return cfg


def _cli(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> int:
    monkeypatch.setattr(harness.cli, 'SUBCOMMANDS', ('cache',))
    return harness.cli.main(argv)


def _age(entry_npy: Path, days: float) -> None:
    old = time.time() - days * DAY
    for path in (entry_npy, entry_npy.with_suffix('.json')):
        os.utime(path, (old, old))


def test_npy_bytes_is_the_size_np_save_writes() -> None:
    for shape in ((0, 8, 4), (3, 8, 4), (1234, 288, 144), (99_999, 384, 192)):
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            buf, {'descr': '|u1', 'fortran_order': False, 'shape': (*shape, 3)}
        )
        assert npy_bytes(shape[0], shape[1:]) == len(buf.getvalue()) + int(np.prod(shape)) * 3
    real = io.BytesIO()
    np.save(real, np.zeros((5, 16, 8, 3), np.uint8))
    assert npy_bytes(5, (16, 8)) == len(real.getvalue())


def test_released_sizes_of_the_full_configs() -> None:
    """From the released counts: SYSU 34,167 training and 3,803 + 6,775 test images; RegDB 4,120
    and 4,120 per split."""
    agw = _config('agw_sysu')
    sizes = [e.bytes for e in cache_entries(agw)]
    assert sizes == [128 + 34_167 * 288 * 144 * 3, 128 + 10_578 * 288 * 144 * 3]
    assert cache_bytes(agw) == sum(sizes) == 5_566_994_176
    indoor = _config('agw_sysu', protocol={**agw.protocol, 'modes': ('indoor',)})
    assert cache_entries(indoor)[1].images == 3_803 + counts.SYSU_TEST_IMAGES[1] + 1_565
    mmn = _config('mmn_regdb')
    assert [e.images for e in cache_entries(mmn)] == [4_120, 4_120]
    assert cache_bytes(mmn) == 2 * (128 + 4_120 * 384 * 192 * 3)


def test_prediction_equals_the_entries_written(
    sysu_root: Path, regdb_root: Path, tmp_path: Path
) -> None:
    for name, root in (('agw_demo_sysu', sysu_root), ('mpanet_demo_regdb', regdb_root)):
        cfg = _config(name, cache_dir=str(tmp_path / name))
        ds = load_dataset(cfg.protocol['dataset'], root)
        planned = cache_entries(cfg, ds)
        assert [e.part for e in planned] == ['train', 'test']
        assert not any(e.present(cache_dir_of(cfg)) for e in planned)
        args = (cfg.protocol['dataset'], str(root), dict(cfg.protocol), tuple(cfg.input_size))
        VIReIDTrainSet(*args, cache_dir=cfg.cache_dir, resize_filter=cfg.resize_filter)
        VIReIDTestSet(*args, cache_dir=cfg.cache_dir, resize_filter=cfg.resize_filter)
        assert all(e.present(cache_dir_of(cfg)) for e in planned)
        written = {e.key: e for e in list_entries(cache_dir_of(cfg))}
        assert set(written) == {e.key for e in planned}
        for e in planned:
            entry = written[e.key]
            assert (
                entry.path.stat().st_size
                == e.bytes
                == cache_bytes(cfg, ds) - sum(other.bytes for other in planned if other is not e)
            )
            dataset = cfg.protocol['dataset']
            split = '' if dataset == 'sysu' else ' split 1'
            assert entry.meta['label'] == f'{dataset}{split} {e.part}'
            assert entry.meta['images'] == e.images and entry.size == tuple(cfg.input_size)
            assert entry.meta['resize_filter'] == cfg.resize_filter
            assert entry.meta['root'] == str(root.resolve())
    with pytest.raises(ValueError, match="the dataset index given is 'regdb'"):
        cache_entries(_config('agw_demo_sysu'), load_dataset('regdb', regdb_root))


def test_a_hit_records_the_use(sysu_root: Path, tmp_path: Path) -> None:
    ds = load_dataset('sysu', sysu_root)
    records = ds.query_records()[:5]
    first = load_images(sysu_root, records, (16, 8), tmp_path, label='five')
    (entry,) = list_entries(tmp_path)
    _age(entry.path, 30)
    assert list_entries(tmp_path)[0].last_use < time.time() - 29 * DAY
    again = load_images(sysu_root, records, (16, 8), tmp_path)
    assert np.array_equal(first, again)
    assert list_entries(tmp_path)[0].last_use > time.time() - 60
    assert not list(tmp_path.glob('*.tmp'))


def test_cache_list_and_clear(
    sysu_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    cache = tmp_path / 'cache'
    monkeypatch.setenv('VIREID_CACHE', str(cache))
    assert _cli(monkeypatch, ['cache', 'list']) == 0
    assert 'no cache folder yet' in capsys.readouterr().out
    ds = load_dataset('sysu', sysu_root)
    query, gallery = ds.query_records(), ds.gallery_candidates()
    load_images(sysu_root, query, (16, 8), label='sysu query')
    load_images(sysu_root, gallery, (16, 8), resize_filter='lanczos', label='sysu gallery')
    load_images(sysu_root, query[:3], (24, 12))  # no label: shown as "?"
    recent, old, gallery_entry = sorted(list_entries(cache), key=lambda e: e.meta['images'])
    _age(old.path, 40)
    # Files the cache folder holds besides entries, and one pre-metadata entry.
    (cache / 'throughput.json').write_text('{}')
    legacy = cache / ('a' * 20 + '.npy')
    np.save(legacy, np.zeros((2, 16, 8, 3), np.uint8))
    fresh_tmp, stale_tmp = cache / 'x1.npy.tmp', cache / 'x2.npy.tmp'
    fresh_tmp.write_bytes(b'0' * 10)
    stale_tmp.write_bytes(b'0' * 10)
    os.utime(stale_tmp, (time.time() - 2 * DAY,) * 2)

    assert _cli(monkeypatch, ['cache', 'list']) == 0
    out = capsys.readouterr().out
    assert out.index(old.key) < out.index(recent.key)  # least recently used first
    assert 'sysu gallery' in out and 'lanczos' in out and '16x8' in out and '24x12' in out
    assert '4 entries' in out and '2 unfinished write(s)' in out and 'a' * 20 in out

    # Refusals: nothing is removed when any name is wrong.
    outside = tmp_path / 'elsewhere.npy'
    np.save(outside, np.zeros(1))
    for names, message in (
        ([str(outside)], 'is outside the cache folder'),
        ([old.key, 'ffffffffffff'], 'ffffffffffff is not an entry'),
        (['ab'], 'ab is not an entry'),
        ([str(cache / '..' / 'elsewhere.npy')], 'is outside the cache folder'),
    ):
        assert _cli(monkeypatch, ['cache', 'clear', *names]) == 2
        err = capsys.readouterr().err
        assert message in err and 'nothing removed' in err
    assert len(list_entries(cache)) == 4 and outside.is_file()

    assert _cli(monkeypatch, ['cache', 'clear', '--older-than', '30', '--dry-run']) == 0
    assert f'would remove {old.key}' in capsys.readouterr().out
    assert old.path.is_file()
    assert _cli(monkeypatch, ['cache', 'clear', '--older-than', '30']) == 0
    out = capsys.readouterr().out
    assert f'removed {old.key} (sysu query, 16x8' in out and 'freed' in out
    assert not old.path.exists() and not old.path.with_suffix('.json').exists()
    assert _cli(monkeypatch, ['cache', 'clear', '--older-than', '30']) == 0
    assert 'nothing to remove' in capsys.readouterr().out

    assert _cli(monkeypatch, ['cache', 'clear', gallery_entry.key[:8]]) == 0
    assert f'removed {gallery_entry.key}' in capsys.readouterr().out
    assert _cli(monkeypatch, ['cache', 'clear', str(recent.path.with_suffix('.json'))]) == 0
    assert not recent.path.exists()

    assert _cli(monkeypatch, ['cache', 'clear', '--all']) == 0
    out = capsys.readouterr().out
    assert f'removed {legacy.stem} (entry, 16x8' in out and 'unfinished write x2.npy.tmp' in out
    assert sorted(p.name for p in cache.iterdir()) == ['throughput.json', 'x1.npy.tmp']
