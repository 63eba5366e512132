"""`vireid tables`: paper tables rebuilt from a fixture of records match hand-written expectations.

The fixture (tests/harness/fixtures/records) holds: AGW (SYSU + RegDB splits 1 and 2, plus an older
duplicate of split 2 elsewhere that must be ignored), MPANet (SYSU, optimistic), three ablation rows
B1/B2/B10 (B2 not comparable), a failed MMN run and an unfinished one. The expected files in
``expected/`` were written by hand from those numbers (e.g. RegDB V->T R1 = mean(70, 72) = 71.00
with std 1.00 over the two splits).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from harness.tables import build_tables
from harness.tables.build import Cell, Column, Row, Table, best_cells, collect, load_reported

FIXTURE = Path(__file__).parent / 'fixtures' / 'records'
EXPECTED = FIXTURE / 'expected'
REPORTED = FIXTURE / 'reported.csv'


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp('tables')
    result = build_tables(FIXTURE, out, reported=REPORTED)
    return out, result


def _markdown_cells(text: str) -> list:
    """Table lines as lists of stripped cells (padding and the alignment row ignored); other lines
    as is."""
    out = []
    for line in text.strip().splitlines():
        if line.startswith('|'):
            cells = [c.strip() for c in line.strip().strip('|').split('|')]
            if all(re.fullmatch(r':?-+:?', c) for c in cells):
                continue
            out.append(cells)
        else:
            out.append(line.rstrip())
    return out


@pytest.mark.parametrize('name', ['comparison', 'multishot', 'ablation'])
def test_markdown_matches_hand_written(built, name):
    out, _ = built
    assert _markdown_cells((out / f'{name}.md').read_text()) == _markdown_cells(
        (EXPECTED / f'{name}.md').read_text()
    )


@pytest.mark.parametrize('name', ['comparison.tex', 'ablation.tex', 'comparison.csv'])
def test_latex_and_csv_match_hand_written(built, name):
    out, _ = built
    assert (out / name).read_text() == (EXPECTED / name).read_text()


def test_cells_csv_traces_every_number(built):
    out, _ = built
    rows = list(csv.DictReader(io.StringIO((out / 'cells.csv').read_text())))
    # Counted by hand: AGW 17 SYSU + 8 RegDB cells + 15 reported; MPANet 12 + 12 reported; 3
    # ablations x 4.
    assert len(rows) == 76
    produced = set((out / 'cells.csv').read_text().splitlines())
    for line in (EXPECTED / 'cells_subset.csv').read_text().splitlines():
        assert line in produced, line
    for row in rows:
        assert row['record_paths'], row
        for path in row['record_paths'].split(';'):
            if row['source'] == 'reproduced':
                assert (FIXTURE / path).is_file()
                rec = json.loads((FIXTURE / path).read_text())
                assert rec['status'] == 'done' and rec['dataset'] == row['dataset']
            else:
                assert path.startswith('reported.csv:')


def test_regdb_cell_is_mean_and_std_over_split_records(built):
    """Recomputed here from the split records themselves (the old duplicate of split 2 is
    ignored)."""
    out, _ = built
    recs = [
        json.loads(p.read_text())
        for p in sorted((FIXTURE / 'runs/agw/agw_regdb').rglob('record.json'))
    ]
    vals = [r['results']['t2v']['mean']['R1'] for r in recs]
    coll = collect(FIXTURE)
    agw = next(e for e in coll.entries if e.method == 'agw')
    cell = agw.cell(Column('regdb', 't2v', 'R1'))
    assert (
        cell.n == 2
        and cell.mean == pytest.approx(np.mean(vals))
        and cell.std == pytest.approx(np.std(vals))
    )
    assert coll.duplicates == ['old/agw/agw_regdb/regdb-split2/record.json']


def test_failed_and_unfinished_are_listed_not_tabulated(built):
    out, result = built
    assert result['failed'] == ['runs/mmn/mmn_sysu/sysu/record.json']
    for name in ('comparison.md', 'multishot.md', 'ablation.md', 'comparison.csv'):
        assert 'MMN' not in (out / name).read_text()
    everything = (out / 'tables.md').read_text()
    assert 'runs/mmn/mmn_sysu/sysu/record.json`: RuntimeError: CUDA out of memory' in everything
    assert "runs/mmn/mmn_regdb/regdb-split1/record.json`: status 'running'" in everything


def test_cmc_plots_one_per_setting(built):
    out, result = built
    pngs = sorted(p.name for p in out.glob('cmc_*.png'))
    assert pngs == [
        'cmc_regdb_t2v.png',
        'cmc_regdb_v2t.png',
        'cmc_sysu_all-multi.png',
        'cmc_sysu_all-single.png',
        'cmc_sysu_indoor-multi.png',
        'cmc_sysu_indoor-single.png',
    ]
    for name in pngs:
        assert (out / name).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_best_cells_bold_every_tie_and_ignore_reported():
    cols = [Column('sysu', 'all-single', 'R1')]
    rows = [
        Row('A', 'reproduced', [Cell(50.0, 1.0)], '', [], True),
        Row('A', 'reported', [Cell(90.0)], '', [], False),
        Row('B', 'reproduced', [Cell(50.0, 2.0)], '', [], True),
        Row('C', 'reproduced', [Cell(49.0, 2.0)], '', [], True),
    ]
    assert best_cells(Table('t', 't', cols, rows, [])) == {(0, 0), (2, 0)}


def test_reported_csv_errors_name_the_file_and_column(tmp_path):
    bad = tmp_path / 'bad.csv'
    bad.write_text('method,dataset,setting,r1,r10,r20,map\nAGW,sysu,all-single,1,2,3,4\n')
    with pytest.raises(ValueError, match=r'bad.csv: missing column\(s\) minp'):
        load_reported(bad)
    bad.write_text('method,dataset,setting,r1,r10,r20,map,minp\nAGW,sysu,all-single,x,2,3,4,\n')
    with pytest.raises(ValueError, match=r'bad.csv line 2: column r1 is'):
        load_reported(bad)


def test_repository_reported_csv_loads():
    rows = load_reported(Path(__file__).parents[2] / 'results' / 'reported.csv')
    assert {r.method for r in rows} >= {'AGW', 'MPANet', 'MMN'}
    assert all(set(r.values) <= {'R1', 'R10', 'R20', 'mAP', 'mINP'} for r in rows)


def test_cli_tables(tmp_path, capsys):
    from harness.cli import tables as cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    out = tmp_path / 'tab'
    args = parser.parse_args(
        [
            'tables',
            '--records',
            str(FIXTURE),
            '--out',
            str(out),
            '--reported',
            str(REPORTED),
            '--no-plots',
        ]
    )
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert '| AGW ' in printed and 'Failed runs' in printed and f'written to {out}/' in printed
    assert (out / 'comparison.tex').read_text() == (EXPECTED / 'comparison.tex').read_text()
    assert not list(out.glob('*.png'))


def test_missing_records_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        build_tables(tmp_path / 'nope', tmp_path / 'out')
