"""`vireid leaderboard --dry-run` over the installed methods: every method on SYSU-MM01, RegDB and
LLCM, with the cost plan. Without the data the SYSU-MM01 and RegDB iterations come from the
released counts, LLCM's cannot (its training counts are unpublished) and the plan says so; with
``--data-root-llcm`` of a (synthetic) LLCM they are counted from its training lists. Nothing
runs."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from harness.plugins import discover
from protocols.datasets.regdb import TRIALS as REGDB_SPLITS

METHODS = {
    'agw': 'agw',
    'caj': 'caj',
    'deen': 'deen',
    'mmn': 'mmn',
    'mpanet': 'mpanet',
    'two_stream_mhsa': 'tsmhsa',
}  # method -> config stem prefix


def _dry_run(tmp_path: Path, *extra: str) -> tuple[int, str]:
    from harness.cli import leaderboard as cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(
        ['leaderboard', '--out', str(tmp_path / 'lb'), '--kinds', 'full', '--dry-run', *extra]
    )
    return cli.run(args, methods=discover())


def _cost_line(printed: str, key: str) -> list[str]:
    """The cost plan's columns for one run: state, key, epochs, 'x', it/epoch, '=', iterations."""
    lines = [ln.split() for ln in printed.splitlines() if re.match(rf'\s+\S+\s+{key}\s+\d', ln)]
    assert len(lines) == 1, (key, printed)
    return lines[0]


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv('VIREID_CACHE', str(tmp_path / 'cache'))
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    from harness.leaderboard.preflight import weights

    monkeypatch.setattr(weights, 'url_reachable', lambda url, timeout=5.0: False)
    # Plenty of disk, whatever this machine has free: the plan of 72 full runs needs about 90 GB,
    # and what is checked here is the plan, not the disk (test_preflight.py checks that).
    from harness.leaderboard.preflight import disk

    monkeypatch.setattr(disk, 'free_space', lambda path: (0, 10**15))
    return tmp_path


def test_every_method_on_three_benchmarks_with_the_cost_plan(offline, llcm_root, capsys):
    missing = offline / 'none'
    roots = ['--data-root-sysu', missing / 'SYSU', '--data-root-regdb', missing / 'RegDB']
    # No data anywhere: planned, with the runs that would fail marked, exit 2.
    code = _dry_run(offline, *map(str, roots), '--data-root-llcm', str(missing / 'LLCM'))
    printed = capsys.readouterr().out
    assert code == 2
    planned = re.findall(r'^\s+pending\s+(\S+)\s+kind=full', printed, re.M)
    expected = [
        key
        for method, stem in METHODS.items()
        for key in (
            f'{method}/{stem}_llcm/llcm',
            *(f'{method}/{stem}_regdb/regdb-split{k}' for k in REGDB_SPLITS),
            f'{method}/{stem}_sysu/sysu',
        )
    ]
    assert sorted(planned) == sorted(expected)  # 6 methods x (1 + 10 + 1) runs
    assert 'cost plan: no runs' not in printed and f'plan: {len(expected)} runs' in printed
    for method, stem in METHODS.items():
        sysu = _cost_line(printed, f'{method}/{stem}_sysu/sysu')
        regdb = _cost_line(printed, f'{method}/{stem}_regdb/regdb-split1')
        llcm = _cost_line(printed, f'{method}/{stem}_llcm/llcm')
        assert int(sysu[4]) > 0 and int(regdb[4]) > 0  # from the released counts
        assert llcm[2] == sysu[2]  # every LLCM recipe keeps its SYSU-MM01 epochs
        assert llcm[4] == '-' and llcm[6] == '-'  # LLCM: unknown without the data
        assert f'{stem}_llcm: not computed (LLCM training image counts are unpublished' in printed
    assert 'iterations per epoch from: released counts (no dataset at' in printed
    assert 'give --data-root-llcm DIR (the dataset) to count them' in printed
    assert printed.count('WOULD FAIL (data') == len(expected)

    # The synthetic LLCM given: its training lists are counted, and its runs would not fail.
    code = _dry_run(offline, *map(str, roots), '--data-root-llcm', str(llcm_root))
    printed = capsys.readouterr().out
    assert code == 2  # SYSU-MM01 and RegDB are still missing
    assert f'iterations per epoch from: dataset index of {llcm_root}' in printed
    assert 'LLCM training image counts are unpublished' not in printed
    for method, stem in METHODS.items():
        llcm = _cost_line(printed, f'{method}/{stem}_llcm/llcm')
        epochs, per_epoch, total = int(llcm[2]), int(llcm[4]), int(llcm[6].replace(',', ''))
        assert total == epochs * per_epoch
        # MPANet's sampler draws 16 identities per batch; this LLCM trains on 16, some of them
        # with too few images of one modality for a chunk: no full batch (its real size is fine).
        assert per_epoch > 0 or method == 'mpanet'
        line = next(ln for ln in printed.splitlines() if f' {method}/{stem}_llcm/llcm ' in ln)
        assert 'WOULD FAIL' not in line and f'data_root={llcm_root}' in line
