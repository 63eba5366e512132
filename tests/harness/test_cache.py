"""The decode-once cache: one entry per dataset root, input size and filter, shared by every list of
that root (each RegDB split's training and test lists included) and read back pixel for pixel;
predicted entry sizes equal the files written; one writer per entry; entries say what they hold and
when they were last used, and ``vireid cache list|clear`` show and remove only entries."""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import harness.cli
import harness.data.cache as cache_module
from harness.data.cache import (
    cache_bytes,
    cache_dir_of,
    cache_entries,
    decode,
    image_pool,
    list_entries,
    load_images,
    npy_bytes,
)
from harness.data.datasets import VIReIDTestSet, VIReIDTrainSet
from harness.engine.config import load_config
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
    """From the released counts: SYSU-MM01's entry holds the 34,167 training and 10,578 test images
    (train, val and test ids), whichever search modes a config scores; RegDB's the 412 x 20 images,
    shared by every split."""
    agw = _config('agw_sysu')
    (entry,) = cache_entries(agw)
    assert entry.images == 34_167 + 3_803 + 6_775
    assert entry.bytes == cache_bytes(agw) == 128 + 44_745 * 288 * 144 * 3 == 5_566_994_048
    indoor = _config('agw_sysu', protocol={**agw.protocol, 'modes': ('indoor',)})
    assert cache_entries(indoor) == [entry]
    mmn = _config('mmn_regdb')
    assert [e.images for e in cache_entries(mmn)] == [8_240]
    assert cache_bytes(mmn) == 128 + 8_240 * 384 * 192 * 3
    split7 = _config('mmn_regdb', protocol={**mmn.protocol, 'split': 7})
    assert cache_entries(split7) == cache_entries(mmn)  # one entry for the ten splits
    with pytest.raises(ValueError, match='no released image counts'):
        cache_entries(_config('agw_demo_sysu', protocol={'dataset': 'llcm'}))


def _sets(cfg, root: Path, **protocol):
    args = (
        cfg.protocol['dataset'],
        str(root),
        {**cfg.protocol, **protocol},
        tuple(cfg.input_size),
    )
    kw = dict(cache_dir=cfg.cache_dir, resize_filter=cfg.resize_filter)
    return VIReIDTrainSet(*args, **kw), VIReIDTestSet(*args, **kw)


def test_prediction_equals_the_entry_written(
    sysu_root: Path, regdb_root: Path, tmp_path: Path
) -> None:
    for name, root in (('agw_demo_sysu', sysu_root), ('mpanet_demo_regdb', regdb_root)):
        cfg = _config(name, cache_dir=str(tmp_path / name))
        ds = load_dataset(cfg.protocol['dataset'], root)
        (planned,) = cache_entries(cfg, ds)
        assert planned.images == len(image_pool(ds)) and not planned.present(cache_dir_of(cfg))
        _sets(cfg, root)
        assert planned.present(cache_dir_of(cfg))
        (entry,) = list_entries(cache_dir_of(cfg))  # training and test sets: one entry
        assert entry.key == planned.key
        assert entry.path.stat().st_size == planned.bytes == cache_bytes(cfg, ds)
        dataset = cfg.protocol['dataset']
        assert entry.meta['label'] == f'{dataset} (every list)'
        assert entry.meta['images'] == planned.images and entry.size == tuple(cfg.input_size)
        assert entry.meta['resize_filter'] == cfg.resize_filter
        assert entry.meta['root'] == str(root.resolve())
    with pytest.raises(ValueError, match="the dataset index given is 'regdb'"):
        cache_entries(_config('agw_demo_sysu'), load_dataset('regdb', regdb_root))


def test_every_list_of_a_root_reads_one_entry_pixel_for_pixel(
    sysu_root: Path, regdb_root: Path, tmp_path: Path
) -> None:
    """Two RegDB splits (different training and test ids) and SYSU's all- and indoor-search test
    lists read one entry per root; each image read through a list is that image decoded."""
    cfg = _config('mpanet_demo_regdb', cache_dir=str(tmp_path / 'regdb'))
    sets = [*_sets(cfg, regdb_root, split=1), *_sets(cfg, regdb_root, split=2)]
    assert {r.path for r in sets[0].records} != {r.path for r in sets[2].records}
    (entry,) = list_entries(tmp_path / 'regdb')
    assert entry.meta['images'] == len(load_dataset('regdb', regdb_root).records)
    sysu = _config('agw_demo_sysu', cache_dir=str(tmp_path / 'sysu'))
    train, test = _sets(sysu, sysu_root)
    _, indoor = _sets(sysu, sysu_root, modes=('indoor',))
    assert len(indoor) < len(test) and len(list_entries(tmp_path / 'sysu')) == 1
    rng = np.random.default_rng(0)
    for data, c in [(s, cfg) for s in sets] + [(train, sysu), (test, sysu), (indoor, sysu)]:
        assert data.images.shape == (len(data.records), *c.input_size, 3)
        for i in rng.choice(len(data), 5, replace=False):
            expected = decode(data.data_root, data.records[i], c.input_size, c.resize_filter)
            assert np.array_equal(data.images[i], expected)
        assert np.array_equal(np.asarray(data.images)[-1], data.images[len(data) - 1])
    # a list with an image its entry does not hold is refused, never served another image
    ds = load_dataset('sysu', sysu_root)
    with pytest.raises(ValueError, match='not among the images of its cache entry'):
        pool = ds.query_records()
        load_images(sysu_root, ds.train_set().records[:2], (16, 8), tmp_path, pool=pool)


def test_one_writer_per_entry(sysu_root: Path, tmp_path: Path, monkeypatch) -> None:
    """Runs that start together decode an entry once: the others wait for it, then read it."""
    ds = load_dataset('sysu', sysu_root)
    records = ds.query_records()[:12]
    calls = []

    def slow_decode(*args, **kwargs):
        calls.append(1)
        time.sleep(0.01)
        return decode(*args, **kwargs)

    monkeypatch.setattr(cache_module, 'decode', slow_decode)
    results: list = [None] * 3

    def load(i: int) -> None:
        results[i] = np.asarray(load_images(sysu_root, records, (16, 8), tmp_path, workers=1))

    threads = [threading.Thread(target=load, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == len(records)
    assert all(np.array_equal(results[0], r) for r in results[1:])
    assert len(list_entries(tmp_path)) == 1 and not list(tmp_path.glob('*.tmp'))


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
    assert all(e.path.with_suffix('.lock').is_file() for e in (recent, old, gallery_entry))
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

    # a writer lock is removed with its entry; one left by a killed write goes with --all
    assert not list(cache.glob(f'{recent.key}.lock'))
    orphan = cache / ('b' * 20 + '.lock')
    orphan.write_text('{}')
    assert _cli(monkeypatch, ['cache', 'clear', '--all']) == 0
    out = capsys.readouterr().out
    assert f'removed {legacy.stem} (entry, 16x8' in out and 'unfinished write x2.npy.tmp' in out
    assert f'removed unused writer lock {orphan.name}' in out
    assert sorted(p.name for p in cache.iterdir()) == ['throughput.json', 'x1.npy.tmp']
