"""The synthetic LLCM (protocols.datasets.synthetic.llcm): the release layout the reader checks,
probes that always have a match, no infrared camera 3 in the test set, the low-light knob."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.cli import main
from protocols.datasets.base import Modality
from protocols.datasets.llcm import LLCM
from protocols.datasets.synthetic import DEFAULT_IDS, DEFAULT_LOW_LIGHT, generate
from protocols.datasets.synthetic import llcm as synthetic_llcm
from protocols.evaluation import evaluate, test_records
from protocols.trials import LLCM_SETTINGS


def test_the_reader_reads_it_and_every_probe_has_a_match(llcm_root: Path) -> None:
    ds = LLCM(llcm_root)  # validates the test layout
    marker = json.loads((llcm_root / '.synthetic.json').read_text())
    assert marker['kind'] == 'llcm' and marker['low_light'] == DEFAULT_LOW_LIGHT
    plan = synthetic_llcm.plan(marker['ids'], 0, marker['gap'], marker['low_light'])
    assert ds.test_ids == plan.test and len(plan.test) == round(marker['ids'] / 3)
    assert sorted(p.name for p in llcm_root.iterdir()) == sorted(
        ['.synthetic.json', 'idx', 'nir', 'test_nir', 'test_vis', 'vis']
    )
    assert not (llcm_root / 'test_nir/cam3').exists() and not ds.unread and not ds.stray_files
    train = ds.train_set()
    assert train.num_classes == len(plan.train)
    for modality in (Modality.VISIBLE, Modality.INFRARED):
        assert sorted({r.pid for r in train.by_modality(modality)}) == list(range(len(plan.train)))
        test = ds.test_images(modality)
        assert {r.pid for r in test} == set(plan.test)
        assert sum(
            n for (p, _, m), n in plan.counts.items() if p in plan.test and m == modality
        ) == (len(test))
    # Names as in the release: <pid>_c0<K>_s<serial>_f<frame>_<vis|nir>.jpg, camera = folder.
    rec = ds.test_images(Modality.INFRARED)[0]
    assert rec.path.split('/')[-1].startswith(f'{rec.pid:04d}_c0{rec.cam}_s')
    assert rec.path.endswith('_nir.jpg')
    recs = test_records('llcm', llcm_root)
    feats = np.random.default_rng(0).normal(size=(len(recs), 4))
    results = evaluate('llcm', llcm_root, dict(directions=LLCM_SETTINGS), recs, feats)
    n_infrared, n_visible = len(ds.test_images(1)), len(ds.test_images(0))
    for trial in results['ir2vis'].per_trial:
        assert trial.n_valid_queries == n_infrared
    for trial in results['vis2ir-conventional'].per_trial:
        assert trial.n_valid_queries == n_visible
    n_draw = len({(p, c) for (p, c, m) in plan.counts if p in plan.test and m == Modality.INFRARED})
    for trial in results['vis2ir'].per_trial:
        assert trial.n_valid_queries == n_draw


def test_same_arguments_same_bytes_and_the_defaults(tmp_path: Path) -> None:
    a = generate('llcm', tmp_path / 'a', ids=8, seed=3, workers=1)
    b = generate('llcm', tmp_path / 'b', ids=8, seed=3, workers=2)
    files = sorted(p.relative_to(a) for p in a.rglob('*') if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob('*') if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert DEFAULT_IDS['llcm'] == 150  # demo size, between the synthetic RegDB (120) and SYSU
    with pytest.raises(ValueError, match='ids must be an int >= 6'):
        generate('llcm', tmp_path / 'c', ids=5)


def test_low_light_darkens_noises_and_washes_out_only_the_colour_images(tmp_path: Path) -> None:
    stats = {}
    for level in (0.0, 1.0):
        root = generate('llcm', tmp_path / f'l{level}', ids=8, seed=1, low_light=level)
        stats[level] = {}
        for top in ('test_vis', 'test_nir'):
            imgs = [
                np.asarray(Image.open(p), np.float64) for p in sorted(root.glob(f'{top}/*/*/*'))
            ]
            pixels = np.concatenate([i.reshape(-1, 3) for i in imgs])
            spread = np.mean([np.abs(i - i.mean(axis=2, keepdims=True)).mean() for i in imgs])
            stats[level][top] = (pixels.mean(), spread, imgs)
    dark, lit = stats[1.0]['test_vis'], stats[0.0]['test_vis']
    assert dark[0] < 0.75 * lit[0]  # darker
    assert dark[1] < 0.75 * lit[1]  # less colour (distance of the channels from their mean)
    # Near-infrared images are lit by the camera: the same pixels whatever the knob.
    for a, b in zip(stats[1.0]['test_nir'][2], stats[0.0]['test_nir'][2]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match='low_light must be a number in'):
        generate('llcm', tmp_path / 'bad', ids=8, low_light=1.5)
    with pytest.raises(ValueError, match='knob of the synthetic LLCM'):
        generate('regdb', tmp_path / 'regdb', ids=4, low_light=0.2)


def test_cli_synth_and_check(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / 'LLCM'
    args = ['data', 'synth', '--dataset', 'llcm', '--out', str(out), '--ids', '8']
    assert main([*args, '--low-light', '0.3', '--gap', '0.1']) == 0
    marker = json.loads((out / '.synthetic.json').read_text())
    assert (marker['low_light'], marker['gap'], marker['ids']) == (0.3, 0.1, 8)
    assert main(['data', 'check', '--dataset', 'llcm', '--root', str(out), '--quick']) == 0
    text = capsys.readouterr().out
    assert 'test_nir/cam9' in text and 'visible: one image per (id, camera)' in text
    assert 'OK:' in text
    assert main(['data', 'synth', '--dataset', 'sysu', '--out', str(tmp_path / 's'),
                 '--low-light', '0.3']) == 2  # fmt: skip
    assert '--low-light is a knob of the synthetic LLCM' in capsys.readouterr().err
