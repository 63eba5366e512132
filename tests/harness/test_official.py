"""The authors' released checkpoints: declarations, `--official-checkpoint` syntax, the trust
requirement, the plan, and fetching with gdown (faked: no network in tests)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import pytest

import methods.agw.released as agw_released
from harness.leaderboard.official import official_runs
from harness.leaderboard.plan import build_plan
from harness.official import (
    OfficialError,
    OfficialFetchError,
    fetch_released,
    md5_of,
    parse_given,
    protocol_tag,
    released_of,
    score_official,
)
from harness.plugins import discover


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    path = tmp_path / 'w.t'
    path.write_bytes(b'not really a checkpoint')
    return path


def test_each_method_declares_its_release_or_none() -> None:
    methods = discover()
    (agw,) = released_of(methods['agw'])
    assert (agw.config, agw.dataset, agw.split) == ('agw_sysu', 'sysu', None)
    assert agw.gdrive_id == '181K9PQGnej0K5xNX9DRBDPAf3K9JosYk' and agw.md5 is None
    assert agw.listed_in.startswith('https://github.com/mangye16/Cross-Modal-Re-ID-baseline/blob/')
    (mpanet,) = released_of(methods['mpanet'])
    assert mpanet.gdrive_id is None and 'pan.baidu.com' in mpanet.url and 'rfti' in mpanet.note
    assert released_of(methods['mmn']) == ()
    for spec in methods.values():  # every declaration names a config the method ships
        stems = {p.stem for p in spec.config_files()}
        assert all(r.config in stems and callable(r.converter()) for r in released_of(spec))


def test_given_checkpoint_syntax(weights: Path) -> None:
    given = parse_given(f'agw:sysu={weights}')
    assert (given.method, given.dataset, given.split, given.path) == (
        'agw',
        'sysu',
        None,
        str(weights),
    )
    assert parse_given(f'mmn:regdb-split3={weights}').target == 'regdb-split3'
    for text, says in (
        (f'agw={weights}', 'expected METHOD:DATASET=PATH'),
        (f'agw:market={weights}', "unknown dataset 'market'"),
        (f'agw:regdb={weights}', 'agw:regdb-split1=PATH'),
        (f'agw:regdb-split11={weights}', 'splits are 1..10'),
        ('agw:sysu=/no/such/file.t', 'is not a file'),
    ):
        with pytest.raises(OfficialError, match=says):
            parse_given(text)


def _plan(tmp_path: Path, datasets=('sysu', 'regdb')):
    methods = discover()
    runs = build_plan(
        methods,
        tmp_path,
        names=['agw', 'mmn'],
        datasets=datasets,
        kinds=['full'],
        regdb_splits=[1, 2],
    )
    return methods, runs


def test_plan_twins_declared_and_given_checkpoints(tmp_path: Path, weights: Path) -> None:
    methods, runs = _plan(tmp_path)
    twins = official_runs(
        runs,
        methods,
        tmp_path,
        declared=True,
        trusted=True,
        given=[parse_given(f'mmn:regdb-split2={weights}')],
    )
    assert [t.key for t in twins] == [
        'agw/agw_sysu/sysu-official',
        'mmn/mmn_regdb/regdb-split2-official',
    ]
    declared, given = twins
    assert declared.checkpoint is None and given.checkpoint == str(weights)
    assert all(t.trusted and t.source == 'official' and not t.trains for t in twins)
    assert declared.downloads == str(tmp_path / 'official')
    assert official_runs(runs, methods, tmp_path, declared=False) == []
    with pytest.raises(OfficialError, match='pickle.*--trusted'):
        official_runs(runs, methods, tmp_path, declared=True)
    with pytest.raises(OfficialError, match='no planned run of agw on regdb-split5'):
        official_runs(
            runs,
            methods,
            tmp_path,
            False,
            [parse_given(f'agw:regdb-split5={weights}')],
            trusted=True,
        )
    with pytest.raises(OfficialError, match="no method 'nope' is installed"):
        official_runs(
            runs, methods, tmp_path, False, [parse_given(f'nope:sysu={weights}')], trusted=True
        )


def _cli(argv: list[str]):
    from harness.cli import leaderboard as cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    return cli, parser.parse_args(['leaderboard', *argv])


def test_cli_plans_official_runs_and_asks_for_trust(tmp_path: Path, capsys) -> None:
    base = [
        '--out',
        str(tmp_path),
        '--methods',
        'agw,mmn',
        '--datasets',
        'sysu',
        '--kinds',
        'full',
        '--dry-run',
    ]
    cli, args = _cli(base + ['--official', '--trusted'])
    # (no SYSU-MM01 at the config's data_root here: the dry run marks the runs and exits 2)
    assert cli.run(args) == 2
    captured = capsys.readouterr()
    plan = captured.out
    assert 'agw/agw_sysu/sysu-official ' in plan and 'WOULD FAIL (data)' in plan
    assert plan.index('agw/agw_sysu/sysu ') < plan.index('agw/agw_sysu/sysu-official ')
    assert 'mmn/mmn_sysu/sysu-official' not in plan
    assert 'mmn: no released checkpoint is declared' in captured.err
    cli, args = _cli(base + ['--official'])
    with pytest.raises(OfficialError, match='weights_only=False.*Pass --trusted'):
        cli.run(args)
    cli, args = _cli(base + ['--official-checkpoint', 'agw:sysu'])
    with pytest.raises(OfficialError, match='expected METHOD:DATASET=PATH'):
        cli.run(args)
    cli, args = _cli(
        [
            '--out',
            str(tmp_path),
            '--methods',
            'agw',
            '--demo',
            '--dry-run',
            '--official',
            '--trusted',
        ]
    )
    assert cli.run(args) == 0
    assert (
        'no released checkpoint fits the planned configs; the released ones fit agw_sysu (agw)'
        in capsys.readouterr().err
    )


def test_gdown_fetch_success_failure_and_by_hand(tmp_path: Path, monkeypatch) -> None:
    import gdown
    from gdown.exceptions import FileURLRetrievalError

    rel = agw_released.RELEASED[0]
    calls = []

    def fake_download(id=None, output=None, quiet=False, timeout=None, **kw):  # noqa: A002
        calls.append((id, Path(output).name, timeout))
        Path(output).write_bytes(b'released weights')
        return output

    monkeypatch.setattr(gdown, 'download', fake_download)
    got = fetch_released(rel, tmp_path)
    assert got == tmp_path / 'agw' / 'agw_sysu_released.t'
    assert got.read_bytes() == b'released weights'
    assert calls == [(rel.gdrive_id, 'agw_sysu_released.t.part', (10, 60))]
    assert not any(p.name.endswith('.part') for p in got.parent.iterdir())
    assert fetch_released(rel, tmp_path) == got and len(calls) == 1  # kept: not fetched again

    def refused(**kw):
        raise FileURLRetrievalError('Cannot retrieve the public link of the file.')

    monkeypatch.setattr(gdown, 'download', refused)
    with pytest.raises(OfficialFetchError) as err:
        fetch_released(rel, tmp_path / 'elsewhere')
    text = str(err.value)
    assert 'FileURLRetrievalError: Cannot retrieve the public link' in text
    assert rel.url in text and str(tmp_path / 'elsewhere' / 'agw' / 'agw_sysu_released.t') in text
    monkeypatch.setattr(gdown, 'download', lambda **kw: None)
    with pytest.raises(OfficialFetchError, match='gdown returned no file'):
        fetch_released(rel, tmp_path / 'elsewhere')

    (by_hand,) = released_of(discover()['mpanet'])
    with pytest.raises(OfficialFetchError) as err:
        fetch_released(by_hand, tmp_path)
    text = str(err.value)
    assert 'download it by hand from https://pan.baidu.com/s/1TnjtfMFPnm5TEprgAhqz9A' in text
    assert 'rfti' in text and '--official-checkpoint mpanet:sysu=PATH' in text
    assert str(tmp_path / 'mpanet' / 'mpanet_released.pth') in text


def test_score_official_needs_trust_and_the_released_md5(
    tmp_path: Path, monkeypatch, sysu_root: Path
) -> None:
    config = 'methods/agw/configs/agw_demo_sysu.py'
    with pytest.raises(OfficialError, match='numpy objects'):
        score_official(config, str(tmp_path / 'run'), str(sysu_root), checkpoint='x.t')
    with pytest.raises(OfficialError, match='declares no released checkpoint for agw_demo_sysu.py'):
        score_official(config, str(tmp_path / 'run'), str(sysu_root), trusted=True)
    kept = tmp_path / 'dl' / 'agw' / 'agw_sysu_released.t'
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b'a truncated download')
    monkeypatch.setattr(
        agw_released,
        'RELEASED',
        (replace(agw_released.RELEASED[0], config='agw_demo_sysu', md5='0' * 32),),
    )
    with pytest.raises(OfficialError, match=f'md5 {md5_of(kept)} differs from the released'):
        score_official(
            config,
            str(tmp_path / 'run'),
            str(sysu_root),
            trusted=True,
            downloads=str(tmp_path / 'dl'),
        )
    assert not (tmp_path / 'run').exists()


def test_protocol_tags_use_the_reported_vocabulary() -> None:
    assert (
        protocol_tag({'dataset': 'sysu', 'protocol': {'dataset': 'sysu'}})
        == 'sysu-official-randperm'
    )
    seeded = {'dataset': 'sysu', 'protocol': {'sampler': 'seeded'}}
    assert protocol_tag(seeded) == 'sysu-agw-seed0-9'
    assert protocol_tag({'dataset': 'regdb'}, 10) == 'regdb-10-splits'
    assert protocol_tag({'dataset': 'regdb'}, 3) == 'regdb-3-of-10-splits'


def _agw_sysu(tmp_path: Path, *extra: str) -> list[str]:
    return [
        '--out',
        str(tmp_path),
        '--methods',
        'agw,mmn',
        '--datasets',
        'sysu',
        '--kinds',
        'full',
        '--dry-run',
        *extra,
    ]


def test_official_only_plans_the_official_runs_alone(tmp_path: Path, weights: Path, capsys) -> None:
    from harness.leaderboard.options import LeaderboardOptions, base_argv, plan_from_options

    cli, args = _cli(_agw_sysu(tmp_path, '--official', '--official-only', '--trusted'))
    assert cli.run(args) == 2  # no SYSU-MM01 at the default data root: the run would fail
    plan = capsys.readouterr().out
    assert 'agw/agw_sysu/sysu-official ' in plan and 'WOULD FAIL (data)' in plan
    assert '1 runs under' in plan and 'agw/agw_sysu/sysu-official ' in plan
    assert 'agw/agw_sysu/sysu ' not in plan  # the 81-epoch training run is not planned
    assert 'plan: 1 runs (1 scored only), 0 iterations, 0.0 GPU-hours' in plan
    options = LeaderboardOptions.from_namespace(args)
    runs, _ = plan_from_options(options)
    assert [(r.key, r.trains) for r in runs] == [('agw/agw_sysu/sysu-official', False)]
    assert '--official-only' in base_argv(options)  # a retry re-scores, never trains

    # the untrained floor only when asked for, and still nothing that trains
    options.untrained = True
    runs, _ = plan_from_options(options)
    assert [r.key for r in runs] == ['agw/agw_sysu/sysu-official', 'agw/agw_sysu/sysu-untrained']
    assert not any(r.trains for r in runs)
    demo = LeaderboardOptions(
        out=str(tmp_path),
        methods='agw',
        datasets='sysu',
        demo=True,
        official_checkpoint=[f'agw:sysu={weights}'],
        official_only=True,
        trusted=True,
    )
    runs, _ = plan_from_options(demo)  # --demo scores untrained twins, not in this mode
    assert [r.key for r in runs] == ['agw/agw_demo_sysu/sysu-official']

    for extra, says in (
        (['--official-only', '--trusted'], '--official-only plans the re-scored official runs'),
        (
            ['--official', '--official-only', '--trusted', '--methods', 'mmn'],
            'nothing to re-score: mmn: no released checkpoint is declared',
        ),
    ):
        cli, args = _cli(_agw_sysu(tmp_path, *extra))
        with pytest.raises(OfficialError, match=says):
            cli.run(args)


def test_one_official_file_per_target(tmp_path: Path, weights: Path, capsys) -> None:
    other = tmp_path / 'other.t'
    other.write_bytes(b'another file')
    cli, args = _cli(
        _agw_sysu(
            tmp_path,
            '--official-checkpoint',
            f'agw:sysu={weights}',
            '--official-checkpoint',
            f'agw:sysu={other}',
            '--trusted',
        )
    )
    with pytest.raises(OfficialError) as err:
        cli.run(args)
    text = str(err.value)
    assert 'agw:sysu is given twice' in text and str(weights) in text and str(other) in text
    assert '\n' not in text

    # the same file twice is one file; a file given beside --official replaces the release
    twice = ['--official-checkpoint', f'agw:sysu={weights}'] * 2
    cli, args = _cli(_agw_sysu(tmp_path, '--official', '--official-only', '--trusted', *twice))
    assert cli.run(args) == 2  # planned (the data are absent, so it is marked WOULD FAIL)
    captured = capsys.readouterr()
    assert '1 runs under' in captured.out
    assert (
        f'agw/agw_sysu/sysu-official scores the file given, {weights}, in place of the declared '
        f'release ({agw_released.RELEASED[0].url})' in captured.err
    )
    methods, runs = _plan(tmp_path)
    (twin,) = official_runs(
        runs, methods, tmp_path, True, [parse_given(f'agw:sysu={weights}')] * 2, trusted=True
    )
    assert twin.checkpoint == str(weights)
