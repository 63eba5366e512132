"""`vireid figures`: grids framed by ground truth from the protocol's ranking, the right images,
deterministic embeddings, reuse of the test's features, clear errors, `leaderboard --figures`."""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harness.cli import main
from harness.data.datasets import train_set
from harness.engine.config import load_config
from harness.engine.metric import VIReIDMetric, keep_test_features
from harness.figures import read_manifest
from harness.figures.batch import draw_for_runs
from harness.figures.embedding import embed, select_identities
from harness.figures.features import features
from harness.figures.retrieval import (
    CORRECT,
    FRAME,
    QUERY,
    WRONG,
    load_image,
    pick_queries,
    render_grid,
)
from harness.figures.source import open_run
from protocols.datasets import load_dataset
from protocols.metrics import pairwise_distance
from protocols.retrieval import retrieval_setting
from protocols.scoring import load_features
from protocols.trials import sysu_galleries

TOY_CONFIGS = (
    Path(__file__).resolve().parents[1] / 'fixtures' / 'toy_plugin' / 'vireid_toy' / 'configs'
)
TOY_PLUGIN = Path(__file__).resolve().parents[1] / 'fixtures' / 'toy_plugin'
FAST = {'train_cfg.max_epochs': 1, 'sampler.num_instances': 8, 'train_dataloader.batch_size': 64}


@pytest.fixture(scope='module')
def trained_run(sysu_root, tmp_path_factory) -> Path:
    """A one-epoch toy SYSU run (config.py, checkpoint, record.json, features.npz); read-only."""
    from harness import plugins
    from harness.engine.run import run_experiment

    work_dir = tmp_path_factory.mktemp('figures') / 'run'
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(TOY_PLUGIN))
        plugins.discover(refresh=True)
        run_experiment(
            str(TOY_CONFIGS / 'toy_sysu.py'),
            str(work_dir),
            data_root=str(sysu_root),
            cfg_options=FAST,
            log_level='WARNING',
        )
    plugins.discover(refresh=True)
    return work_dir


@pytest.fixture
def run_copy(trained_run, tmp_path, toy_plugin) -> Path:
    return Path(shutil.copytree(trained_run, tmp_path / 'run'))


def _reference_lists(
    root: Path, features_file: Path, queries: list[str], topk: int
) -> list[list[str]]:
    """Top-k gallery paths of ``queries`` from the protocol's own pieces (trial 0 all-search
    single-shot gallery, cosine distance, ascending with ties by gallery order, cam-3 queries skip
    cam 2)."""
    ds = load_dataset('sysu', root)
    paths, feats = load_features(features_file, root)
    row = {p: i for i, p in enumerate(paths)}
    cands = ds.gallery_candidates()
    gallery = [cands[i] for i in sysu_galleries(ds, 'all', 1, 'official', trials=1)[0]]
    by_path = {r.path: r for r in ds.query_records()}
    dist = pairwise_distance(feats[[row[q] for q in queries]], feats[[row[r.path] for r in cands]])
    gallery_cols = [cands.index(r) for r in gallery]
    out = []
    for q, d in zip(queries, dist[:, gallery_cols]):
        order = np.lexsort((np.arange(d.size), d))
        keep = [gallery[j].path for j in order if not (by_path[q].cam == 3 and gallery[j].cam == 2)]
        out.append(keep[:topk])
    return out


def test_figures_of_a_run_show_the_protocol_ranking_framed_by_ground_truth(
    run_copy, sysu_root, capsys
):
    assert (
        main(
            ['figures', str(run_copy), '--queries', '3', '--topk', '5', '--ids', '4', '--seed', '1']
        )
        == 0
    )
    out = run_copy / 'figures'
    manifest = read_manifest(run_copy)
    assert manifest['features']['trained'].startswith('kept by the run')  # the test's own features
    assert manifest['features']['untrained'].startswith('extracted from random initialisation')
    files = {e['kind']: e for e in manifest['figures']}
    assert set(files) == {'retrieval', 'embedding', 'distances'}
    for entry in files.values():
        assert Image.open(out / entry['file']).size[0] > 300 and entry['caption']
    assert 0 <= files['distances']['overlap_trained'] <= 1
    assert str(out / 'tsne.png') in capsys.readouterr().out

    grid = files['retrieval']
    assert grid['file'] == 'retrieval_all-single_trial0_random.png' and grid['topk'] == 5
    rows = list(csv.DictReader((out / grid['csv']).open()))
    assert len(rows) == 15
    queries = list(dict.fromkeys(r['query_path'] for r in rows))
    assert queries == grid['queries'] and len(queries) == 3
    # The images are the protocol's ranking of the run's features, framed by the dataset's ids.
    expected = _reference_lists(sysu_root, run_copy / 'features.npz', queries, 5)
    assert [[r['gallery_path'] for r in rows if r['query_path'] == q] for q in queries] == expected
    pid = {r.path: r.pid for r in load_dataset('sysu', sysu_root).records}
    for r in rows:
        assert (
            int(r['gallery_pid']) == pid[r['gallery_path']]
            and int(r['query_pid']) == pid[r['query_path']]
        )
        assert r['correct'] == str(int(pid[r['gallery_path']] == pid[r['query_path']]))

    # Pixels: the saved grid is the rendering of these lists; every frame has the ground truth's
    # colour and holds the listed image.
    source = open_run(run_copy)
    setting = retrieval_setting(
        'sysu', sysu_root, source.protocol, source.records, source.kept_features()
    )
    index = {r.path: i for i, r in enumerate(setting.query)}
    lists = setting.ranked([index[q] for q in queries], topk=5)
    canvas, cells = render_grid(setting, lists, sysu_root, source.title, (128, 64))
    saved = np.asarray(Image.open(out / grid['file']).convert('RGB'))
    np.testing.assert_array_equal(np.asarray(canvas), saved)
    for cell in cells:
        x0, y0, x1, y1 = cell.box
        if cell.col == 0:
            assert cell.path == queries[cell.row] and cell.colour == QUERY
        else:
            assert cell.path == expected[cell.row][cell.col - 1]
            truth = pid[cell.path] == pid[queries[cell.row]]
            assert cell.colour == (CORRECT if truth else WRONG)
        for x, y in (
            (x0, y0),
            (x1 - 1, y1 - 1),
            ((x0 + x1) // 2, y0 + 1),
            (x0 + 1, (y0 + y1) // 2),
        ):
            assert tuple(saved[y, x]) == cell.colour
        inner = saved[y0 + FRAME : y1 - FRAME, x0 + FRAME : x1 - FRAME]
        np.testing.assert_array_equal(
            inner, np.asarray(load_image(sysu_root / cell.path, (128, 64)))
        )
    assert {c.colour for c in cells} >= {QUERY, WRONG}


def test_embedding_is_deterministic_for_a_seed():
    feats = np.random.default_rng(0).normal(size=(60, 32))
    first = embed(feats, seed=3)
    np.testing.assert_array_equal(first, embed(feats.copy(), seed=3))
    assert first.shape == (60, 2) and np.isfinite(first).all() and first.std(axis=0).min() > 0.1
    assert not np.allclose(embed(feats, seed=3, distance='euclidean'), first)


def test_without_kept_features_the_checkpoint_is_extracted_once_like_the_test(run_copy, tmp_path):
    kept = load_features(run_copy / 'features.npz')[1]
    (run_copy / 'features.npz').unlink()
    source = open_run(run_copy)
    assert source.kept_features() is None
    feats, where = features(source, 'trained', tmp_path / 'cache')
    assert (
        where.startswith('extracted from the checkpoint') and str(run_copy / 'epoch_1.pth') in where
    )
    np.testing.assert_allclose(feats, kept, atol=1e-5)  # the same features the run's test scored
    paths, saved = load_features(tmp_path / 'cache' / 'trained.npz')
    assert paths == [r.path for r in source.records] and np.array_equal(saved, feats)
    assert features(source, 'trained', tmp_path / 'cache')[1] == 'extracted earlier (trained.npz)'
    untrained, where = features(source, 'untrained', tmp_path / 'cache')
    assert where == 'extracted from random initialisation, seed 0' and not np.allclose(
        untrained, feats
    )
    np.testing.assert_array_equal(features(source, 'untrained', tmp_path / 'other')[0], untrained)

    # Query picks on the protocol's per-query ranks.
    setting = retrieval_setting('sysu', source.data_root, source.protocol, source.records, feats)
    ranks = setting.query_ranks()
    hardest = pick_queries(ranks, 4, 'hardest')
    assert [ranks.first_rank[q] for q in hardest] == sorted(ranks.first_rank[ranks.valid])[::-1][:4]
    pids = np.array([r.pid for r in setting.query])
    per_id = pick_queries(ranks, 4, 'hardest', pids=pids)
    assert len({pids[q] for q in per_id}) == 4
    worst = {p: ranks.first_rank[(pids == p) & ranks.valid].max() for p in pids[per_id]}
    assert [ranks.first_rank[q] for q in per_id] == sorted(worst.values(), reverse=True)
    assert all(ranks.first_rank[q] == worst[pids[q]] for q in per_id)
    others = ranks.valid & ~np.isin(pids, list(worst))
    assert ranks.first_rank[others].max() <= min(worst.values())
    failures = pick_queries(ranks, 5, 'failures', seed=1)
    assert failures == pick_queries(ranks, 5, 'failures', seed=1) and all(
        ranks.first_rank[failures] > 1
    )
    assert pick_queries(ranks, 5, 'random', seed=1) != pick_queries(ranks, 5, 'random', seed=2)
    assert all(ranks.valid[pick_queries(ranks, 10**6, 'random')])


def test_a_run_without_its_checkpoint_gets_a_clear_message(run_copy, capsys):
    (run_copy / 'features.npz').unlink()
    for ckpt in run_copy.glob('*.pth'):
        ckpt.unlink()
    assert main(['figures', str(run_copy)]) == 2
    err = capsys.readouterr().err
    assert 'has no checkpoint' in err and 'epoch_1.pth' in err and 'does not exist' in err
    assert f'--work-dir {run_copy}' in err and '--checkpoint FILE' in err
    assert main(['figures', str(run_copy / 'nothing-here')]) == 2
    assert 'does not exist' in capsys.readouterr().err
    assert main(['figures', str(run_copy), '--direction', 't2v']) == 2
    assert '--direction do(es) not apply to sysu' in capsys.readouterr().err


def test_an_untrained_run_points_to_its_trained_twin(run_copy, tmp_path, capsys):
    twin = Path(shutil.copytree(run_copy, tmp_path / 'sysu-untrained'))
    record = json.loads((twin / 'record.json').read_text())
    record.update(source='untrained', features=None, checkpoint=None)
    (twin / 'record.json').write_text(json.dumps(record))
    assert main(['figures', str(twin)]) == 2
    err = capsys.readouterr().err
    assert "record source 'untrained'" in err and f'vireid figures {tmp_path / "sysu"}' in err


def test_regdb_thermal_to_visible_grid_of_a_saved_checkpoint(regdb_root, tmp_path, toy_plugin):
    """A run directory made by hand: config.py, a random-init checkpoint, last_checkpoint."""
    from harness.api import load_model

    run = tmp_path / 'regdb-run'
    run.mkdir()
    cfg = load_config(
        TOY_CONFIGS / 'toy_regdb.py', {'data_root': str(regdb_root), 'protocol.split': 3}
    )
    cfg.dump(str(run / 'config.py'))
    torch.manual_seed(5)
    # Sized by the run's own data, as a checkpoint trained on it would be (load_model alone would
    # size the classifier for the real RegDB's 206 training identities).
    classes = train_set('regdb', regdb_root, cfg.protocol).num_classes
    model = load_model(run / 'config.py', num_classes=classes)
    torch.save(
        dict(state_dict=model.state_dict(), meta=dict(num_classes=model.classifier.out_features)),
        run / 'epoch_2.pth',
    )
    (run / 'last_checkpoint').write_text(str(run / 'epoch_2.pth'))
    assert (
        main(
            [
                'figures',
                str(run),
                '--direction',
                't2v',
                '--queries',
                '2',
                '--topk',
                '4',
                '--ids',
                '3',
            ]
        )
        == 0
    )
    manifest = read_manifest(run)
    grid = next(e for e in manifest['figures'] if e['kind'] == 'retrieval')
    assert grid['file'] == 'retrieval_t2v_split3_random.png' and manifest['split'] == 3
    rows = list(csv.DictReader((run / 'figures' / grid['csv']).open()))
    assert {r['query_path'].split('/')[0] for r in rows} == {'Thermal'}
    assert {r['gallery_path'].split('/')[0] for r in rows} == {'Visible'}
    test_ids = {r.pid for r in load_dataset('regdb', regdb_root).test_thermal(3)}
    assert {int(r['query_pid']) for r in rows} <= test_ids
    assert all(r['correct'] == str(int(r['query_pid'] == r['gallery_pid'])) for r in rows)
    assert main(['figures', str(run), '--mode', 'indoor']) == 2


def test_figures_for_many_runs_skip_up_to_date_ones_and_report_broken_ones(tmp_path, monkeypatch):
    import harness.figures.batch as batch

    drawn = []

    def fake_draw(run_dir, data_root=None, log=None, **options):
        drawn.append((Path(run_dir).name, data_root, options))
        return dict(figures=[], out=str(Path(run_dir) / 'figures'))

    fresh, stale, broken = (tmp_path / name for name in ('fresh', 'stale', 'broken'))
    for run in (fresh, stale):
        (run / 'figures').mkdir(parents=True)
        (run / 'record.json').write_text('{}')
        (run / 'figures' / 'index.json').write_text('{}')
    os.utime(stale / 'record.json', (time.time() + 10, time.time() + 10))  # re-recorded since drawn
    broken.mkdir()
    logs: list[str] = []
    failed = draw_for_runs([(broken, None)], log=logs.append)  # the real drawing: a clear error
    assert [f[0] for f in failed] == [str(broken)] and 'no config.py' in failed[0][1]
    monkeypatch.setattr(batch, 'draw_figures', fake_draw)
    assert draw_for_runs([(fresh, None), (stale, 'data/x')], log=logs.append, ids=3) == []
    assert drawn == [('stale', 'data/x', {'ids': 3})] and logs[-2].endswith('up to date')
    draw_for_runs([(fresh, None)], redraw=True, log=logs.append)
    assert drawn[-1][0] == 'fresh'


def test_test_features_are_kept_when_small_or_asked(tmp_path, monkeypatch):
    import harness.engine.metric as metric_module

    metric = VIReIDMetric('sysu', 'unused', dict(dataset='sysu'))
    assert keep_test_features(metric, None, tmp_path / 'f.npz') is None  # no test ran
    feats = np.arange(12, dtype=np.float32).reshape(3, 4)
    metric.features = (['a.jpg', 'b.jpg', 'c.jpg'], feats)
    assert keep_test_features(metric, False, tmp_path / 'f.npz') is None
    assert keep_test_features(metric, None, tmp_path / 'f.npz') == 'f.npz'
    paths, loaded = load_features(tmp_path / 'f.npz')
    assert paths == ['a.jpg', 'b.jpg', 'c.jpg'] and np.array_equal(loaded, feats)
    monkeypatch.setattr(metric_module, 'KEEP_FEATURES_MAX_BYTES', 8)
    assert keep_test_features(metric, None, tmp_path / 'g.npz') is None
    assert keep_test_features(metric, True, tmp_path / 'g.npz') == 'g.npz'


def test_identity_and_image_draws_are_seeded(sysu_root):
    from harness.figures.embedding import select_images
    from protocols.evaluation import test_records

    records = test_records('sysu', sysu_root)
    ids = select_identities(records, 4, seed=2)
    assert ids == select_identities(records, 4, seed=2) and len(ids) == 4
    assert any(select_identities(records, 4, seed=s) != ids for s in range(3, 8))
    rows = select_images(records, ids, seed=2, per_group=3)
    assert rows.tolist() == select_images(records, ids, seed=2, per_group=3).tolist()
    assert len(rows) == 4 * 2 * 3 and {records[i].pid for i in rows} == set(ids)
    with pytest.raises(ValueError, match='--ids'):
        select_identities(records, 0, seed=2)


def test_kept_features_that_no_longer_give_the_record_are_not_drawn(run_copy, sysu_root, capsys):
    """features.npz replaced after the test (here: by features that rank every query right) is
    found by scoring it again: the figures extract from the checkpoint instead and say why;
    without a checkpoint they refuse."""
    paths, kept = load_features(run_copy / 'features.npz')
    record = json.loads((run_copy / 'record.json').read_text())
    r1 = record['results']['all-single']['mean']['R1']
    assert r1 < 90  # one toy epoch: far from perfect
    pid = {r.path: r.pid for r in open_run(run_copy).records}
    ids = sorted(set(pid.values()))
    perfect = np.eye(len(ids), dtype=np.float32)[[ids.index(pid[p]) for p in paths]]
    np.savez(run_copy / 'features.npz', paths=np.array(paths), features=perfect)
    source = open_run(run_copy)
    assert source.kept_features() is None
    assert (
        f"no longer match its record (all-single R1 100.00 against the record's {r1:.2f})"
        in source.kept_problem
    )
    assert main(['figures', str(run_copy), '--queries', '2', '--topk', '3', '--ids', '3']) == 0
    manifest = read_manifest(run_copy)
    assert manifest['features']['trained'].startswith('extracted from the checkpoint')
    assert 'no longer match its record' in manifest['features']['trained']
    assert 'no longer match its record' in capsys.readouterr().out

    for ckpt in run_copy.glob('*.pth'):
        ckpt.unlink()
    shutil.rmtree(run_copy / 'figures')
    assert main(['figures', str(run_copy)]) == 2
    err = capsys.readouterr().err
    assert 'has no checkpoint' in err and f'its kept features {run_copy / "features.npz"}' in err


def test_figures_are_never_written_inside_the_dataset(run_copy, sysu_root, capsys):
    before = sorted(p.name for p in sysu_root.iterdir())
    assert main(['figures', str(run_copy), '--out', str(sysu_root / 'figs')]) == 2
    assert f'--out {sysu_root / "figs"} is inside the dataset root' in capsys.readouterr().err
    assert sorted(p.name for p in sysu_root.iterdir()) == before
