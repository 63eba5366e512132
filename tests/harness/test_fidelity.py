"""What an official script does that a config must be able to say: resize filter, numerical
backends (TF32/cuDNN) in every record, the official best-epoch rule (epochs and criterion)."""

from __future__ import annotations

import json
from pathlib import Path

import mmcv
import numpy as np
import pytest
from mmengine.hooks import Hook
from PIL import Image

from harness.data.cache import cache_key, decode, load_images
from harness.engine import backends
from harness.engine.config import load_config
from harness.engine.run import run_experiment, runner_config
from harness.engine.selection import mmn_r1
from harness.registry import HOOKS
from protocols.datasets import load_dataset
from protocols.datasets.base import ImageRecord
from protocols.evaluation import test_records
from protocols.metrics import eval_regdb
from protocols.trials import seeded_gallery

ROOT = Path(__file__).resolve().parents[2]
TOY_SYSU = ROOT / 'tests' / 'fixtures' / 'toy_plugin' / 'vireid_toy' / 'configs' / 'toy_sysu.py'
CONFIGS = ROOT / 'methods'


@pytest.fixture
def photo(tmp_path: Path) -> tuple[Path, ImageRecord]:
    """A JPEG with detail at every scale (shrinking filters differ on it)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:64]
    img = 127 + 60 * np.sin(xx * 1.3) * np.cos(yy * 0.7) + rng.normal(0, 30, (128, 64))
    img = img.clip(0, 255)
    rgb = np.stack([img, img[::-1], img[:, ::-1]], axis=2).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / 'a.jpg', quality=95)
    return tmp_path, ImageRecord(path='a.jpg', pid=1, cam=1, modality=0)


@pytest.mark.parametrize(
    'name, pil_filter', [('lanczos', Image.LANCZOS), ('bilinear', Image.BILINEAR)]
)
def test_resize_is_pils_own_filter(photo, name, pil_filter):
    root, record = photo
    # What the official loaders do: Image.open(path).resize((w, h), filter).
    with Image.open(root / record.path) as im:
        official = np.asarray(im.convert('RGB').resize((36, 72), pil_filter))
    assert np.array_equal(decode(root, record, (72, 36), name), official)
    # mmcv's OpenCV backend (its default) does not low-pass when shrinking: far from PIL's result.
    cv2_result = mmcv.imresize(
        np.asarray(Image.open(root / record.path).convert('RGB')), (36, 72), interpolation=name
    )
    assert np.abs(cv2_result.astype(int) - official).max() > 20


def test_the_cache_is_keyed_by_the_resize_filter(photo, tmp_path):
    root, record = photo
    size, cache = (72, 36), tmp_path / 'c'
    assert cache_key(root, [record], size, 'lanczos') != cache_key(root, [record], size, 'bilinear')
    lanczos = np.array(load_images(root, [record], size, cache, resize_filter='lanczos'))
    bilinear = np.array(load_images(root, [record], size, cache, resize_filter='bilinear'))
    assert not np.array_equal(lanczos, bilinear) and len(list((tmp_path / 'c').glob('*.npy'))) == 2
    with pytest.raises(ValueError, match="resize_filter = 'antialias'; choose one of"):
        load_images(root, [record], size, cache, resize_filter='antialias')


@pytest.mark.parametrize(
    'config, expected',
    [
        ('agw/configs/agw_sysu.py', 'lanczos'),
        ('agw/configs/agw_regdb.py', 'lanczos'),
        ('mmn/configs/mmn_sysu.py', 'lanczos'),
        ('mmn/configs/mmn_regdb.py', 'lanczos'),
        ('mpanet/configs/mpanet_sysu.py', 'bilinear'),
        ('mpanet/configs/mpanet_regdb.py', 'bilinear'),
        ('two_stream_mhsa/configs/tsmhsa_sysu.py', 'bilinear'),
        ('two_stream_mhsa/configs/tsmhsa_regdb.py', 'bilinear'),
    ],
)
def test_each_method_resizes_with_its_official_filter(config, expected):
    cfg = load_config(CONFIGS / config)
    assert cfg.resize_filter == expected
    rc = runner_config(cfg, '/tmp/unused', num_classes=4)
    assert rc['train_dataloader']['dataset']['resize_filter'] == expected
    assert rc['test_dataloader']['dataset']['resize_filter'] == expected


def test_two_stream_full_config_trains_in_fp32():
    for name in ('tsmhsa_sysu.py', 'tsmhsa_regdb.py'):
        cfg = load_config(CONFIGS / 'two_stream_mhsa' / 'configs' / name)
        assert cfg.amp == dict(enabled=False)
    text = (CONFIGS / 'two_stream_mhsa' / 'README.md').read_text()
    assert 'harness default' not in text


def test_backends_are_settable_checked_and_read_back():
    assert backends.resolve(None) == backends.DEFAULTS
    assert backends.resolve(dict(matmul_tf32=True))['matmul_tf32'] is True
    with pytest.raises(ValueError, match=r"unknown keys \['tf32'\]"):
        backends.resolve(dict(tf32=True))
    with pytest.raises(ValueError, match='True or False'):
        backends.resolve(dict(cudnn_tf32='yes'))
    with pytest.raises(ValueError, match='unknown keys'):
        load_config(TOY_SYSU, {'backends': dict(tf32=True)})
    before = backends.effective()
    try:
        wanted = dict(
            matmul_tf32=True, cudnn_tf32=False, cudnn_benchmark=True, cudnn_deterministic=True
        )
        backends.apply(wanted)
        now = backends.effective()
        assert {k: now[k] for k in wanted} == wanted
        assert now['float32_matmul_precision'] == 'high'  # what matmul TF32 means to torch
    finally:
        backends.apply({k: before[k] for k in backends.DEFAULTS})
    cfg = load_config(TOY_SYSU, {'backends': dict(cudnn_benchmark=True)})
    assert runner_config(cfg, '/tmp/unused', num_classes=4)['env_cfg']['cudnn_benchmark'] is True


@HOOKS.register_module()
class RecordValEpochs(Hook):
    epochs: list[int] = []

    def after_val_epoch(self, runner, metrics=None) -> None:
        RecordValEpochs.epochs.append(runner.epoch)


def test_record_states_backends_and_tests_after_the_listed_epochs(toy_plugin, sysu_root, tmp_path):
    RecordValEpochs.epochs = []
    opts = {
        'train_cfg.max_epochs': 2,
        'sampler.num_instances': 8,
        'train_dataloader.batch_size': 64,
        'backends': dict(matmul_tf32=True),
        'custom_hooks': [dict(type='RecordValEpochs')],
        'selection': dict(rule='best-test-rank1', epochs=[1], criterion='mmn'),
    }
    record = run_experiment(
        str(TOY_SYSU),
        str(tmp_path / 'run'),
        data_root=str(sysu_root),
        cfg_options=opts,
        log_level='WARNING',
    )
    try:
        assert record['status'] == 'done' and record['optimistic']
        # Tested after exactly the listed epochs (mmengine's loop would also test after the last).
        assert RecordValEpochs.epochs == [1]
        assert record['selection_cfg'] == dict(rule='best-test-rank1', epochs=[1], criterion='mmn')
        prov = json.loads((tmp_path / 'run' / 'record.json').read_text())['provenance']
        assert prov['backends']['matmul_tf32'] is True and prov['backends']['cudnn_tf32'] is True
        assert {'cudnn_benchmark', 'cudnn_deterministic', 'float32_matmul_precision'} <= set(
            prov['backends']
        )
        assert prov['distributed'] == dict(
            world_size=1, sync_bn=False, global_batch=64, per_process_batch=64
        )
        assert record['not_comparable'] == [] and record['comparable']
    finally:
        backends.apply(backends.DEFAULTS)


def test_mmn_criterion_is_rank1_on_the_seed0_gallery_without_camera_removal(sysu_root):
    records = test_records('sysu', sysu_root, {})
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(1000, 16))
    feats = np.stack([centres[r.pid] + rng.normal(0, 1.5, 16) for r in records])
    ds = load_dataset('sysu', sysu_root)
    query, candidates = ds.query_records(), ds.gallery_candidates()
    gallery = [candidates[i] for i in seeded_gallery(ds, 'all', 1, trial=0)]
    rows = {r.path: i for i, r in enumerate(records)}
    q = feats[[rows[r.path] for r in query]]
    g = feats[[rows[r.path] for r in gallery]]
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    g = g / np.linalg.norm(g, axis=1, keepdims=True)
    # MMN train.py: eval_regdb(-(query_feat @ gall_feat.T), query_label, gall_label), cmc[0].
    cmc, _, _ = eval_regdb(-(q @ g.T), [r.pid for r in query], [r.pid for r in gallery])
    score = mmn_r1('sysu', str(sysu_root), {}, records, feats, 'cosine')
    assert score == pytest.approx(cmc[0] * 100)
    assert 0 < cmc[0] < 1
