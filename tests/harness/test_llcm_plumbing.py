"""LLCM through the harness: a method config over ``protocol_base = 'llcm'`` trained and scored by
the engine, its record re-scored by ``vireid score`` / ``extract`` / ``test``, drawn by ``vireid
figures``, tabulated, and planned by the leaderboard with the cost plan; ``vireid data check`` on a
bad layout. The run is AGW's CPU demo recipe over the LLCM base (tests/fixtures/configs), one epoch
on the 24-identity synthetic LLCM of tests/conftest.py."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.engine.run import run_experiment
from harness.engine.selection import mmn_r1
from harness.leaderboard import cost as C
from harness.leaderboard.options import LeaderboardOptions, base_argv, plan_from_options
from harness.leaderboard.plan import build_plan, retry_command
from harness.plugins import MethodSpec
from harness.records import record_problem
from harness.tables.export import build_tables
from protocols.scoring import load_features

FIXTURE_CONFIGS = Path(__file__).resolve().parents[1] / 'fixtures' / 'configs'
CONFIG = FIXTURE_CONFIGS / 'agw_demo_llcm.py'
SYSU_RECORD = (
    Path(__file__).resolve().parent / 'fixtures/records/runs/agw/agw_sysu/sysu/record.json'
)


@pytest.fixture(scope='module')
def llcm_run(tmp_path_factory: pytest.TempPathFactory, llcm_root: Path) -> Path:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    work = tmp_path_factory.mktemp('llcm-run') / 'agw' / 'agw_demo_llcm' / 'llcm'
    try:
        run_experiment(
            str(CONFIG),
            str(work),
            data_root=str(llcm_root),
            cfg_options={'train_cfg.max_epochs': 1},
            log_level='WARNING',
        )
    finally:
        torch.set_num_threads(threads)
    return work


def _record(run: Path) -> dict:
    return json.loads((run / 'record.json').read_text())


@pytest.mark.usefixtures('one_thread')
def test_the_engine_trains_and_scores_both_directions(llcm_run: Path, llcm_root: Path) -> None:
    rec = _record(llcm_run)
    assert rec['status'] == 'done' and rec['dataset'] == 'llcm' and rec['comparable']
    assert rec['protocol'] == dict(
        dataset='llcm', directions=['ir2vis', 'vis2ir'], trials=10, max_rank=20
    )
    assert list(rec['results']) == ['ir2vis', 'vis2ir']
    assert all(len(r['per_trial']) == 10 for r in rec['results'].values())
    assert rec['gallery_ids'] == {'ir2vis': 8, 'vis2ir': 8}  # test ids with a visible image
    assert record_problem(rec) is None
    # The kept features give the record's numbers through `vireid score`, in each direction.
    features = llcm_run / rec['features']
    for direction in ('ir2vis', 'vis2ir'):
        out = llcm_run / f'score-{direction}.json'
        args = ['score', str(features), '--dataset', 'llcm', '--root', str(llcm_root)]
        assert main([*args, '--direction', direction, '--json', str(out)]) == 0
        scored = json.loads(out.read_text())
        assert scored['mean'] == pytest.approx(rec['results'][direction]['mean'], abs=1e-6)
    assert main([*args, '--split', '2']) == 2  # no RegDB split on LLCM


@pytest.mark.usefixtures('one_thread')
def test_extract_and_test_reproduce_the_record(
    llcm_run: Path, llcm_root: Path, capsys: pytest.CaptureFixture
) -> None:
    rec = _record(llcm_run)
    ckpt = rec['checkpoint']
    out = llcm_run / 'extracted.npz'
    args = ['extract', str(CONFIG), ckpt, '--out', str(out), '--data-root', str(llcm_root)]
    assert main([*args, '--device', 'cpu']) == 0
    printed = capsys.readouterr().out
    assert '--dataset llcm' in printed and '--direction vis2ir' in printed
    kept_paths, kept = load_features(llcm_run / rec['features'])
    paths, feats = load_features(out)
    assert paths == kept_paths
    np.testing.assert_allclose(feats, kept, rtol=0, atol=1e-5)
    result = llcm_run / 'test.json'
    args = ['test', str(CONFIG), ckpt, '--data-root', str(llcm_root), '--json', str(result)]
    assert main([*args, '--work-dir', str(llcm_run / 'test')]) == 0
    tested = json.loads(result.read_text())['results']
    for direction in ('ir2vis', 'vis2ir'):
        assert tested[direction]['mean'] == pytest.approx(
            rec['results'][direction]['mean'], abs=1e-4
        )


@pytest.mark.usefixtures('one_thread')
def test_figures_draw_an_llcm_direction(llcm_run: Path) -> None:
    from harness.figures import draw_figures

    out = llcm_run / 'figs'
    manifest = draw_figures(
        llcm_run, out, queries=3, topk=4, ids=3, direction='vis2ir', trial=1, log=lambda _: None
    )
    grid = next(e for e in manifest['figures'] if e['kind'] == 'retrieval')
    assert grid['file'] == 'retrieval_vis2ir_trial1_random.png' and (out / grid['file']).is_file()
    assert grid['setting'] == 'vis2ir' and grid['trial'] == 1
    with pytest.raises(ValueError, match='--mode do\\(es\\) not apply to llcm'):
        draw_figures(llcm_run, out, mode='indoor', log=lambda _: None)


def test_tables_have_llcm_columns(llcm_run: Path, tmp_path: Path) -> None:
    records = tmp_path / 'records'
    shutil.copytree(llcm_run, records / 'agw' / 'agw_demo_llcm' / 'llcm')
    sysu = records / 'agw' / 'agw_demo_sysu' / 'sysu'
    sysu.mkdir(parents=True)
    rec = json.loads(SYSU_RECORD.read_text())
    rec['entry'] = _record(llcm_run)['entry']  # the same table entry as the LLCM run
    (sysu / 'record.json').write_text(json.dumps(rec))
    out = build_tables(records, tmp_path / 'tables', reported=None)
    tables = tmp_path / 'tables'
    llcm = (tables / 'llcm.md').read_text()
    for header in (
        'IR→VIS R1',
        'IR→VIS R10',
        'IR→VIS R20',
        'IR→VIS mAP',
        'VIS→IR R1',
        'VIS→IR mAP',
    ):
        assert header in llcm
    assert 'LLCM: 10 trials' in llcm and "as DEEN's test.py computes it" in llcm
    mean = _record(llcm_run)['results']['vis2ir']['mean']['mAP']
    assert f'{mean:.2f}' in llcm
    assert 'IR→VIS' not in (tables / 'comparison.md').read_text()  # the SYSU row's own table
    assert r'LLCM VIS$\to$IR' in (tables / 'llcm.tex').read_text()
    assert 'IR→VIS R1' in (tables / 'llcm.csv').read_text().splitlines()[0]
    cells = (tables / 'cells.csv').read_text().splitlines()
    llcm_cells = [c for c in cells if ',llcm,' in c]
    assert len(llcm_cells) == 2 * 6  # two directions x six metrics
    assert all('llcm-deen-seed0-9' in c for c in llcm_cells)
    assert (tables / 'cmc_llcm_ir2vis.png').is_file() and (tables / 'cmc_llcm_vis2ir.png').is_file()
    assert 'LLCM IR→VIS' in (tables / 'index.html').read_text()
    assert 'llcm.md' in {Path(f).name for f in out['files']}


def test_record_check_knows_llcm() -> None:
    rec = {'status': 'done', 'dataset': 'llcm', 'results': {}}
    assert record_problem(rec) is None
    assert 'expected one of' in record_problem(dict(rec, dataset='market'))


def _methods(tmp_path: Path, kind: str) -> dict:
    folder = tmp_path / 'agw' / 'configs'
    folder.mkdir(parents=True)
    (folder / 'agw_x_llcm.py').write_text(
        "method_base = 'agw/agw_demo_sysu'\nprotocol_base = 'llcm'\n"
        f"entry = dict(method='agw', kind={kind!r}, label='AGW x')\n"
    )
    return {'agw': MethodSpec(name='agw', title='AGW', configs=folder)}


def _dry_run(methods: dict, tmp_path: Path, *extra: str) -> argparse.Namespace:
    from harness.cli import leaderboard as cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    return parser.parse_args(['leaderboard', '--out', str(tmp_path / 'lb'), '--dry-run', *extra])


def test_leaderboard_plans_llcm_with_its_data_root_and_cost(
    tmp_path: Path, llcm_root: Path, capsys: pytest.CaptureFixture, monkeypatch
) -> None:
    from harness.cli import leaderboard as cli

    monkeypatch.setenv('VIREID_CACHE', str(tmp_path / 'cache'))
    methods = _methods(tmp_path, 'full')
    args = _dry_run(methods, tmp_path, '--datasets', 'llcm', '--data-root-llcm', str(llcm_root))
    assert cli.run(args, methods=methods) == 0
    printed = capsys.readouterr().out
    assert 'agw/agw_x_llcm/llcm' in printed and f'data_root={llcm_root}' in printed
    assert f'iterations per epoch from: dataset index of {llcm_root}' in printed
    # Without the data: no published counts to stand in, and the plan says so.
    args = _dry_run(methods, tmp_path, '--datasets', 'llcm', '--data-root-llcm', '/nowhere')
    assert cli.run(args, methods=methods) == 2  # the run would fail: no LLCM at /nowhere
    printed = capsys.readouterr().out
    assert 'agw/agw_x_llcm/llcm' in printed and 'WOULD FAIL (data)' in printed
    assert 'LLCM training image counts are unpublished' in printed
    assert 'give --data-root-llcm DIR' in printed
    # Every dataset by default; the retry command keeps the selection and the data root.
    runs, roots = plan_from_options(
        LeaderboardOptions.from_namespace(_dry_run(methods, tmp_path)), methods
    )
    assert [r.key for r in runs] == ['agw/agw_x_llcm/llcm'] and set(roots) >= {'llcm'}
    assert '--datasets llcm' in retry_command(runs, ['--data-root-llcm', str(llcm_root)])
    assert ['--data-root-llcm', '/d'] == base_argv(
        LeaderboardOptions.from_namespace(_dry_run(methods, tmp_path, '--data-root-llcm', '/d'))
    )[2:4]


def test_demo_cost_plan_reads_the_synthetic_llcm_plan(tmp_path: Path, llcm_root: Path) -> None:
    from tests.conftest import LLCM_IDS

    planned = C.synthetic_training_labels('llcm', ids=LLCM_IDS, seed=0)
    written, source = C.training_labels('llcm', str(llcm_root), {'dataset': 'llcm'})
    assert source == f'dataset index of {llcm_root}'
    assert sorted(zip(planned.labels.tolist(), planned.modalities.tolist())) == sorted(
        zip(written.labels.tolist(), written.modalities.tolist())
    )
    runs = build_plan(_methods(tmp_path, 'demo'), tmp_path / 'lb', kinds=('demo',))
    (cost,) = C.cost_plan(runs, throughputs={})
    assert cost.iters_per_epoch > 0 and 'plan' in cost.size_source


def test_data_check_of_a_bad_layout_exits_2(llcm_copy: Path, capsys) -> None:
    shutil.rmtree(llcm_copy / 'test_nir')
    assert main(['data', 'check', '--dataset', 'llcm', '--root', str(llcm_copy)]) == 2
    err = capsys.readouterr().err
    assert str(llcm_copy) in err and 'missing folder(s) test_nir' in err
    assert 'expected the LLCM release layout' in err and len(err.strip().splitlines()) == 1


def test_mmn_selection_is_refused_on_llcm(llcm_root: Path) -> None:
    with pytest.raises(ValueError, match='ZYK100/MMN train.py, which has no llcm test'):
        mmn_r1('llcm', str(llcm_root), {}, [], np.zeros((0, 2)), 'cosine')


def test_the_conventional_reading_is_a_protocol_change() -> None:
    from harness.engine.config import (
        ProtocolChangeError,
        check_protocol_unchanged,
        load_config,
        protocol_changes,
    )

    cfg = load_config(CONFIG)
    assert cfg.protocol['directions'] == ('ir2vis', 'vis2ir') and cfg.data_root == 'data/LLCM'
    assert check_protocol_unchanged(cfg)
    options = {'protocol.directions': ['ir2vis', 'vis2ir', 'vis2ir-conventional']}
    changed = load_config(CONFIG, options)
    assert list(protocol_changes(changed)) == ['protocol.directions']
    with pytest.raises(ProtocolChangeError, match='allow-protocol-change'):
        check_protocol_unchanged(changed)
