"""Re-scoring the authors' AGW checkpoint through `vireid leaderboard`: a file in the official
``train.py`` format, given with --official-checkpoint or fetched with a faked gdown, becomes a
record with source 'official' and a "re-scored (official weights)" row above the reproduced one
(the papers' numbers in their own block); a failed fetch is one clear failure while the other
runs finish."""

from __future__ import annotations

import argparse
import csv
import io
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import methods.agw.released as agw_released
from harness.data.datasets import train_set
from harness.official import md5_of
from harness.records import read_record
from methods.agw.model import AGW
from methods.agw.released import onto_model

from .official_layout import OfficialLayout, distinctive, save_train_py_checkpoint

WIDTH = 8  # agw_demo_sysu.py: base_channels=8, one block per stage
CONFIG = 'agw_demo_sysu'
RUN = Path('runs/agw/agw_demo_sysu')


def _cli(argv: list[str]):
    from harness.cli import leaderboard as cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    return cli, parser.parse_args(['leaderboard', *argv])


def _argv(out: Path, sysu_root: Path, *extra: str) -> list[str]:
    return [
        '--out',
        str(out),
        '--methods',
        'agw',
        '--configs',
        CONFIG,
        '--datasets',
        'sysu',
        '--kinds',
        'demo',
        '--data-root-sysu',
        str(sysu_root),
        '--launcher',
        'inline',
        '--no-untrained',
        '--no-plots',
        '--cfg-options',
        'train_cfg.max_epochs=1',
        *extra,
    ]


@pytest.fixture(scope='module')
def official_file(sysu_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    classes = train_set('sysu', sysu_root, {'dataset': 'sysu'}).num_classes
    net = distinctive(OfficialLayout(classes, base_channels=WIDTH))
    return save_train_py_checkpoint(net, tmp_path_factory.mktemp('official') / 'sysu_agw_best.t')


@pytest.fixture(scope='module')
def leaderboard(sysu_root: Path, official_file: Path, tmp_path_factory: pytest.TempPathFactory):
    """One leaderboard: AGW demo trained one epoch (the other tests copy that run), and the
    official file re-scored."""
    out = tmp_path_factory.mktemp('lb')
    cli, args = _cli(
        _argv(out, sysu_root, '--official-checkpoint', f'agw:sysu={official_file}', '--trusted')
    )
    code = cli.run(args)
    return out, code


def test_converted_demo_width_weights_give_the_official_features(official_file: Path) -> None:
    obj = torch.load(official_file, weights_only=False)
    classes = obj['net']['module.classifier.weight'].shape[0]
    official = OfficialLayout(classes, base_channels=WIDTH)
    official.load_state_dict({k.removeprefix('module.'): v for k, v in obj['net'].items()})
    official.eval()
    model = AGW(
        num_classes=classes,
        backbone=dict(pretrained=False, blocks=(1, 1, 1, 1), base_channels=WIDTH),
    )
    model.load_state_dict(onto_model(official_file, model.state_dict(), trusted=True), strict=True)
    model.eval()
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        for modal, code in ((1, 0), (2, 1)):
            assert torch.allclose(model.extract_feat(x, code), official(x, modal)[1], atol=1e-5)


@pytest.mark.slow
def test_official_checkpoint_gives_an_official_record_and_a_rescored_row(
    leaderboard, official_file
) -> None:
    out, code = leaderboard
    assert code == 0
    rec = read_record(out / RUN / 'sysu-official')
    assert rec['status'] == 'done' and rec['source'] == 'official'
    assert rec['selection'] == "the authors' released checkpoint" and not rec['optimistic']
    info = rec['provenance']['official']
    assert info['md5'] == md5_of(official_file) and info['file'] == str(official_file)
    assert info['origin']['kind'] == 'file given (--official-checkpoint)'
    assert info['expected_md5'] is None and info['md5_matches_release'] is None
    assert Path(info['converted']).is_file()
    assert rec['results']['all-single']['mean']['R1'] >= 0
    assert read_record(out / RUN / 'sysu')['source'] == 'reproduced'

    table = (out / 'tables' / 'comparison.md').read_text()
    rows = [line for line in table.splitlines() if line.startswith('| AGW')]
    sources = [[c.strip() for c in line.split('|')[1:3]] for line in rows]
    assert sources == [  # the paper's numbers in their own block, never as a demo row
        ['AGW', 'reported (TPAMI 2021)'],
        ['AGW (demo)', 're-scored (official weights) (demo)'],
        ['AGW (demo)', 'reproduced (demo)'],
    ]
    assert 'protocol: sysu-agw-seed0-9' in rows[0]
    assert (
        f'protocol: sysu-official-randperm (this harness); weights: sysu_agw_best.t md5 '
        f'{info["md5"][:8]}' in rows[1]
    )
    assert "re-scored (official weights): the authors' released checkpoint" in table

    cells = list(csv.DictReader(io.StringIO((out / 'tables' / 'cells.csv').read_text())))
    order = list(dict.fromkeys(c['source'] for c in cells if c['label'] == 'AGW (demo)'))
    assert order == ['official', 'reproduced']
    assert {c['label'] for c in cells if c['source'] == 'reported'} == {'AGW'}
    official = [c for c in cells if c['source'] == 'official']
    assert {c['protocol'] for c in official} == {'sysu-official-randperm'}
    one = next(c for c in official if (c['setting'], c['metric']) == ('all-single', 'R1'))
    assert float(one['mean']) == pytest.approx(rec['results']['all-single']['mean']['R1'], abs=1e-4)
    assert one['record_paths'] == f'{RUN}/sysu-official/record.json'
    comparison_csv = (out / 'tables' / 'comparison.csv').read_text()
    assert 're-scored (official weights) (demo)' in comparison_csv


def _declared(monkeypatch: pytest.MonkeyPatch) -> None:
    """AGW's Drive release, declared for the demo config (the real one fits agw_sysu)."""
    monkeypatch.setattr(
        agw_released, 'RELEASED', (replace(agw_released.RELEASED[0], config=CONFIG),)
    )


def _copy_trained(src: Path, out: Path) -> None:
    shutil.copytree(src / RUN / 'sysu', out / RUN / 'sysu')  # trained already: not redone


@pytest.mark.slow
def test_official_fetches_the_declared_release_with_gdown(
    leaderboard, official_file, sysu_root, tmp_path, monkeypatch
) -> None:
    _declared(monkeypatch)
    calls = []

    def fake_download(file_id: str, output: str) -> str:
        calls.append(file_id)
        shutil.copyfile(official_file, output)
        return output

    monkeypatch.setattr('harness.official.fetch.gdown_download', fake_download)
    _copy_trained(leaderboard[0], tmp_path)
    cli, args = _cli(_argv(tmp_path, sysu_root, '--official', '--trusted'))
    assert cli.run(args) == 0
    assert calls == [agw_released.DRIVE_ID]
    kept = tmp_path / 'official' / 'agw' / 'agw_sysu_released.t'
    assert md5_of(kept) == md5_of(official_file)
    info = read_record(tmp_path / RUN / 'sysu-official')['provenance']['official']
    assert info['origin']['gdrive_id'] == agw_released.DRIVE_ID and info['file'] == str(kept)
    assert info['origin']['listed_in'].startswith('https://github.com/mangye16/')
    table = (tmp_path / 'tables' / 'comparison.md').read_text()
    assert 're-scored (official weights) (demo)' in table


@pytest.mark.slow
def test_a_failed_fetch_is_one_clear_failure_and_the_rest_goes_on(
    leaderboard, sysu_root, tmp_path, monkeypatch, capsys
) -> None:
    _declared(monkeypatch)
    _copy_trained(leaderboard[0], tmp_path)

    def offline(file_id: str, output: str) -> str:
        raise ConnectionError('Failed to resolve drive.google.com')

    monkeypatch.setattr('harness.official.fetch.gdown_download', offline)
    # the untrained twin is planned after the official one: it runs all the same
    cli, args = _cli(_argv(tmp_path, sysu_root, '--official', '--trusted', '--untrained'))
    assert cli.run(args) == 1
    printed = capsys.readouterr().out
    assert read_record(tmp_path / RUN / 'sysu-untrained')['status'] == 'done'
    failed = read_record(tmp_path / RUN / 'sysu-official')
    assert failed['status'] == 'failed' and failed['source'] == 'official'
    message = failed['error']['message']
    dest = tmp_path / 'official' / 'agw' / 'agw_sysu_released.t'
    for part in (
        'could not fetch',
        'ConnectionError',
        agw_released.RELEASED[0].url,
        str(dest),
        '--official-checkpoint agw:sysu=PATH',
    ):
        assert part in message, part
    assert not dest.exists() and not dest.with_name(dest.name + '.part').exists()
    assert 'agw/agw_demo_sysu/sysu-official' in printed and '--official --trusted' in printed
    table = (tmp_path / 'tables' / 'comparison.md').read_text()
    assert 'reproduced (demo)' in table and 'untrained (demo)' in table
    assert 're-scored' not in table


@pytest.mark.slow
def test_rescoring_a_given_official_checkpoint_plans_and_runs_no_training_run(
    official_file, sysu_root, tmp_path, monkeypatch
) -> None:
    trained = []

    def trains(**kwargs):
        trained.append(kwargs['work_dir'])
        raise AssertionError('a re-scoring leaderboard trained a run')

    monkeypatch.setattr('harness.engine.run.run_experiment', trains)
    argv = _argv(tmp_path, sysu_root, '--official-checkpoint', f'agw:sysu={official_file}')
    argv = [a for a in argv if a != '--no-untrained'] + ['--official-only', '--trusted']
    cli, args = _cli(argv)
    assert cli.run(args) == 0 and trained == []
    records = sorted(p.relative_to(tmp_path) for p in (tmp_path / 'runs').rglob('record.json'))
    assert records == [RUN / 'sysu-official' / 'record.json']  # no trained, no untrained run
    rec = read_record(tmp_path / RUN / 'sysu-official')
    assert rec['status'] == 'done' and rec['source'] == 'official'
    assert rec['provenance']['official']['md5'] == md5_of(official_file)
    table = (tmp_path / 'tables' / 'comparison.md').read_text()
    rows = [line for line in table.splitlines() if line.startswith('| AGW')]
    assert [[c.strip() for c in line.split('|')[1:3]] for line in rows] == [
        ['AGW', 'reported (TPAMI 2021)'],
        ['AGW (demo)', 're-scored (official weights) (demo)'],
    ]


def _files(run_dir: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(run_dir)): (md5_of(p), p.stat().st_mtime_ns)
        for p in sorted(run_dir.rglob('*'))
        if p.is_file()
    }


@pytest.mark.slow
def test_rerun_official_only_rescores_another_file_and_leaves_the_trained_run(
    leaderboard, official_file, sysu_root, tmp_path
) -> None:
    for leaf in ('sysu', 'sysu-official'):
        shutil.copytree(leaderboard[0] / RUN / leaf, tmp_path / RUN / leaf)
    obj = torch.load(official_file, weights_only=False)
    second = tmp_path / 'sysu_agw_epoch79.t'
    torch.save({**obj, 'epoch': 79}, second)  # the same weights in another file
    assert md5_of(second) != md5_of(official_file)
    trained_before = _files(tmp_path / RUN / 'sysu')
    scored_before = _files(tmp_path / RUN / 'sysu-official')
    given = ['--official-checkpoint', f'agw:sysu={second}', '--official-only', '--trusted']

    from harness.official import OfficialError

    cli, args = _cli(_argv(tmp_path, sysu_root, *given))
    with pytest.raises(OfficialError) as err:  # done with another file: not skipped silently
        cli.run(args)
    text = str(err.value)
    assert 'already scored' in text and str(official_file) in text and str(second) in text
    assert '--rerun --official-only' in text
    assert _files(tmp_path / RUN / 'sysu-official') == scored_before

    cli, args = _cli(_argv(tmp_path, sysu_root, *given, '--rerun'))
    assert cli.run(args) == 0
    assert _files(tmp_path / RUN / 'sysu') == trained_before  # neither retrained nor touched
    rec = read_record(tmp_path / RUN / 'sysu-official')
    assert rec['status'] == 'done' and rec['provenance']['official']['md5'] == md5_of(second)
    prev = read_record(tmp_path / RUN / 'sysu-official' / 'record.prev.json')
    assert prev['provenance']['official']['md5'] == md5_of(official_file)
