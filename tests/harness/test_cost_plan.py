"""The leaderboard cost plan: iterations from each config's sampler and the dataset size, time
from a throughput figure, totals in the dry run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from harness.bench.train import own_setting
from harness.data.datasets import train_set
from harness.engine.config import load_config
from harness.leaderboard import cost as C
from harness.leaderboard.plan import build_plan
from harness.plugins import discover


@pytest.fixture(scope='module')
def methods():
    return discover()


def _costs(methods, tmp_path, configs, **kw):
    runs = build_plan(
        methods,
        tmp_path / 'lb',
        configs=configs,
        regdb_splits=(1,),
        data_roots=kw.pop(
            'data_roots', {'sysu': str(tmp_path / 'none'), 'regdb': str(tmp_path / 'none')}
        ),
    )
    return {
        c.run.config_stem: c for c in C.cost_plan(runs, throughputs=kw.pop('throughputs', {}), **kw)
    }


def test_iterations_from_the_released_counts_follow_each_sampler(methods, tmp_path):
    costs = _costs(
        methods,
        tmp_path,
        ['agw_sysu', 'agw_regdb', 'mmn_sysu', 'mmn_regdb', 'mpanet_sysu', 'mpanet_regdb'],
    )
    # AGW's IdentitySampler: max(#visible, #infrared) // (P*K) + 1 batches per epoch.
    assert costs['agw_sysu'].iters_per_epoch == 22_258 // 32 + 1 == 696
    assert costs['agw_sysu'].iterations == 81 * 696
    assert costs['agw_regdb'].iters_per_epoch == 2060 // 32 + 1
    assert costs['mmn_sysu'].iters_per_epoch == 1392 and costs['mmn_regdb'].iters_per_epoch == 129
    # MPANet's sampler runs one pass over every identity's images: 34 batches on RegDB,
    # about 170 on SYSU.
    assert costs['mpanet_regdb'].iters_per_epoch == 34
    assert 160 <= costs['mpanet_sysu'].iters_per_epoch <= 186
    assert all('released counts' in c.size_source for c in costs.values())
    assert all(c.hours is None and c.seconds_per_iter is None for c in costs.values())


def test_iterations_from_the_dataset_index(methods, tmp_path, sysu_root):
    costs = _costs(methods, tmp_path, ['agw_sysu'], data_roots={'sysu': str(sysu_root)})
    ts = train_set('sysu', sysu_root, {'dataset': 'sysu'})
    n = max(sum(r.modality == m for r in ts.records) for m in (0, 1))
    assert costs['agw_sysu'].iters_per_epoch == n // 32 + 1
    assert costs['agw_sysu'].size_source == f'dataset index of {sysu_root}'


def test_time_from_figures_and_their_precedence(methods, tmp_path, monkeypatch):
    monkeypatch.setenv('VIREID_CACHE', str(tmp_path / 'cache'))
    path = C.record_throughput('x/agw_sysu.py', 0.5, device='GPU 0', setting='fp32')
    assert path == tmp_path / 'cache' / 'throughput.json'
    assert json.loads(path.read_text())['agw_sysu']['seconds_per_iter'] == 0.5
    costs = _costs(methods, tmp_path, ['agw_sysu', 'mmn_sysu'], throughputs=None)
    assert costs['agw_sysu'].hours == pytest.approx(81 * 696 * 0.5 / 3600)
    assert costs['agw_sysu'].speed_source.startswith('bench train, GPU 0')
    assert costs['mmn_sysu'].hours is None
    # --seconds-per-iter wins over a measured figure; per-config values over the common one.
    costs = _costs(
        methods,
        tmp_path,
        ['agw_sysu', 'mmn_sysu'],
        throughputs=None,
        seconds_per_iter='1.0,mmn_sysu=2',
    )
    assert costs['agw_sysu'].seconds_per_iter == 1.0 and costs['mmn_sysu'].seconds_per_iter == 2.0
    assert costs['agw_sysu'].speed_source == '--seconds-per-iter'
    text = C.format_cost_plan(list(costs.values()), gpus_per_run=2)
    hours = 2 * (81 * 696 * 1.0 + 81 * 1392 * 2.0) / 3600
    assert f'plan: 2 runs, {81 * 696 + 81 * 1392:,} iterations, {hours:.1f} GPU-hours' in text
    assert 'all 2 GPUs' in text


def test_bad_seconds_per_iter_and_broken_configs(methods, tmp_path):
    for bad in ('fast', '-1', 'agw_sysu=0', 'nan'):
        with pytest.raises(ValueError, match='--seconds-per-iter'):
            C.parse_seconds_per_iter(bad)
    with pytest.raises(ValueError, match='names no planned config: nope'):
        _costs(methods, tmp_path, ['agw_sysu'], seconds_per_iter='nope=1')
    broken = tmp_path / 'broken'
    broken.mkdir()
    (broken / 'b_sysu.py').write_text(
        "protocol_base = 'sysu'\nentry = dict(method='b', kind='full')\n"
    )
    from harness.plugins import MethodSpec

    runs = build_plan({'b': MethodSpec(name='b', title='B', configs=broken)}, tmp_path / 'lb')
    (c,) = C.cost_plan(runs, seconds_per_iter='1')
    assert c.iterations is None and c.hours is None and 'not computed' in c.size_source
    text = C.format_cost_plan([c])
    assert (
        'not computed' in text
        and 'GPU-hours unknown' in text
        and 'no throughput figure' not in text
    )


def test_own_setting_names_the_measured_row():
    assert own_setting(load_config(Path('methods/agw/configs/agw_sysu.py'))) == 'fp32'
    assert (
        own_setting({'amp': {'enabled': True, 'dtype': 'bfloat16'}, 'channels_last': True})
        == 'amp-bf16+channels_last'
    )
    assert own_setting({'amp': {'enabled': True}}) == 'amp-fp16'


def test_dry_run_prints_the_cost_plan(methods, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('VIREID_CACHE', str(tmp_path / 'cache'))
    from harness.cli import leaderboard as cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(
        [
            'leaderboard',
            '--out',
            str(tmp_path / 'lb'),
            '--dry-run',
            '--configs',
            'agw_sysu',
            '--data-root-sysu',
            str(tmp_path / 'none'),
            '--seconds-per-iter',
            '0.25',
        ]
    )
    # The data root does not exist: the run is marked and the dry run fails, with the cost plan
    # (from the released counts) printed all the same.
    assert cli.run(args, methods=methods) == 2
    printed = capsys.readouterr().out
    assert 'agw/agw_sysu/sysu' in printed and '81 x      696 =     56,376' in printed
    assert 'WOULD FAIL (data)' in printed and f'{tmp_path / "none"} does not exist' in printed
    assert f'plan: 1 runs, 56,376 iterations, {56_376 * 0.25 / 3600:.1f} GPU-hours' in printed


def _per_label(labels) -> list[tuple[int, int]]:
    """(images, modality) per (label, modality), sorted: all a sampler sees of a training set."""
    pairs = zip(labels.labels.tolist(), labels.modalities.tolist())
    counts: dict[tuple[int, int], int] = {}
    for pair in pairs:
        counts[pair] = counts.get(pair, 0) + 1
    return sorted((n, m) for (_, m), n in counts.items())


def test_synthetic_plan_gives_the_generated_training_set(sysu_root, regdb_root):
    from tests.conftest import REGDB_IDS, SYSU_IDS

    planned = C.synthetic_training_labels('sysu', ids=SYSU_IDS, seed=0)
    written, _ = C.training_labels('sysu', str(sysu_root), {'dataset': 'sysu'})
    assert _per_label(planned) == _per_label(written)
    cfg = load_config(Path('methods/agw/configs/agw_demo_sysu.py'))
    assert C.iterations_per_epoch(cfg, planned) == C.iterations_per_epoch(cfg, written)
    for split in (1, 3):
        planned = C.synthetic_training_labels('regdb', split, ids=REGDB_IDS, seed=0)
        protocol = {'dataset': 'regdb', 'split': split}
        written, _ = C.training_labels('regdb', str(regdb_root), protocol)
        assert _per_label(planned) == _per_label(written)
        assert planned.labels.tolist() == written.labels.tolist()
    with pytest.raises(ValueError, match='no synthetic'):
        C.synthetic_training_labels('market')


def test_demo_plan_counts_iterations_before_the_data_exists(methods, tmp_path):
    runs = build_plan(
        methods,
        tmp_path / 'lb',
        kinds=('demo',),
        regdb_splits=(1,),
        untrained=True,
        data_roots={'sysu': str(tmp_path / 'd' / 'sysu'), 'regdb': str(tmp_path / 'd' / 'regdb')},
    )
    costs = C.cost_plan(runs, seconds_per_iter='0.5', throughputs={})
    trained = [c for c in costs if c.run.trains]
    scored = [c for c in costs if not c.run.trains]
    assert trained and scored and len(trained) == len(scored)
    assert all(c.iterations and c.iterations > 0 and 'plan' in c.size_source for c in trained)
    assert all(c.iterations == 0 and c.hours == 0.0 for c in scored)
    total = sum(c.iterations for c in trained)
    text = C.format_cost_plan(costs)
    assert (
        f'plan: {len(costs)} runs ({len(scored)} scored only), {total:,} iterations, '
        f'{total * 0.5 / 3600:.1f} GPU-hours'
    ) in text


def test_a_figure_of_another_config_version_is_not_used(methods, tmp_path, monkeypatch):
    monkeypatch.setenv('VIREID_CACHE', str(tmp_path / 'cache'))
    config = tmp_path / 'agw_sysu.py'
    config.write_text('# one version\n')
    C.record_throughput(config, 0.5, device='GPU 0')
    entry = C.read_throughputs()['agw_sysu']
    costs = _costs(methods, tmp_path, ['agw_sysu'], throughputs={'agw_sysu': entry})
    assert costs['agw_sysu'].seconds_per_iter is None
    assert 'another version of the config' in costs['agw_sysu'].speed_source
    # The same figure, recorded from the config the plan uses, is used.
    C.record_throughput(Path('methods/agw/configs/agw_sysu.py'), 0.5, device='GPU 0')
    costs = _costs(methods, tmp_path, ['agw_sysu'], throughputs=None)
    assert costs['agw_sysu'].seconds_per_iter == 0.5
