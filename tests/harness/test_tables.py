"""`vireid tables`: paper tables rebuilt from a fixture of records match hand-written expectations.

The fixture (tests/harness/fixtures/records) holds: AGW (SYSU + RegDB splits 1 and 2, plus an older
duplicate of split 2 elsewhere that must be ignored), MPANet (SYSU, optimistic), three ablation rows
B1/B2/B10 (B2 not comparable), a failed MMN run and an unfinished one, and a reported.csv whose AGW
numbers come partly from a quoting paper (marked ‡). The expected files in ``expected/`` were
written by hand from those numbers (e.g. RegDB V->T R1 = mean(70, 72) = 71.00 with std 1.00 over
the two splits; best reproduced value bold, second underlined).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from harness.tables import build_tables
from harness.tables.build import (
    Cell,
    Column,
    Row,
    Table,
    best_cells,
    collect,
    load_reported,
    podium,
)
from harness.tables.plots import dot_points

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


def test_dot_plot_draws_every_source_of_each_method(built):
    out, result = built
    assert (out / 'dotplot.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert out / 'dotplot.png' in result['files']
    coll, rep = collect(FIXTURE), load_reported(REPORTED)
    # AGW indoor search: the quoted paper number (hollow), the reproduced mean ± std over trials.
    assert dot_points(coll, rep, 'sysu', 'indoor-single', 'R1') == [
        ('AGW', [('reported', 54.17, None, True), ('reproduced', 60.0, 1.0, False)]),
        ('MPANet', [('reproduced', 75.0, 1.0, False)]),
    ]
    # RegDB: the mean ± std over the two split records; MPANet has no RegDB run, so no band.
    assert dot_points(coll, rep, 'regdb', 'v2t', 'R1') == [
        ('AGW', [('reported', 70.05, None, False), ('reproduced', 71.0, 1.0, False)])
    ]


def test_best_cells_bold_every_tie_and_ignore_reported():
    cols = [Column('sysu', 'all-single', 'R1')]
    rows = [
        Row('A', 'reproduced', [Cell(50.0, 1.0)], '', [], True, source_kind='reproduced'),
        Row('A', 'reported', [Cell(90.0)], '', [], False),
        Row('B', 'reproduced', [Cell(50.0, 2.0)], '', [], True, source_kind='reproduced'),
        Row('C', 'reproduced', [Cell(49.0, 2.0)], '', [], True, source_kind='reproduced'),
        Row('C', 'untrained', [Cell(60.0, 2.0)], '', [], False, source_kind='untrained'),
        Row('D', 'reproduced', [Cell(48.0, 2.0)], '', [], True, source_kind='reproduced'),
    ]
    table = Table('t', 't', cols, rows, [])
    assert best_cells(table) == {(0, 0), (2, 0)}
    # Second best is the next distinct value (49, not a tied 50), among reproduced rows only.
    assert podium(table) == ({(0, 0), (2, 0)}, {(3, 0)})


BAD_HEAD = 'method,dataset,setting,r1,r10,r20,map,minp,source,printed_in,confidence\n'
GOOD = 'AGW,sysu,all-single,47.50,,,47.65,,Ye et al.,README line 9,original\n'


@pytest.mark.parametrize(
    'row, message',
    [
        (
            'AGW,sysu,all-single,x,2,3,4,,Ye,README,original',
            r'line 3: column r1 is .x., not a number',
        ),
        (
            'AGW,sysu,all-single,101,,,,,Ye,README,original',
            r'line 3: column r1 is 101, outside 0..100',
        ),
        ('AGW,sysu,all-single,-1,,,,,Ye,README,original', r'line 3: column r1 is -1, outside'),
        (
            'AGW,sysu,all-singel,50,,,,,Ye,README,original',
            r"line 3: unknown sysu setting 'all-singel'",
        ),
        ('AGW,regdb,all-single,50,,,,,Ye,README,original', r'line 3: unknown regdb setting'),
        ('AGW,market,all-single,50,,,,,Ye,README,original', r"line 3: unknown dataset 'market'"),
        (
            'AGW,sysu,all-single,50,,,,,Ye,,original',
            r'line 3: no printed_in; every reported number',
        ),
        ('AGW,sysu,all-single,50,,,,,,,original', r'line 3: no source, printed_in'),
        ('AGW,sysu,all-single,50,,,,,Ye,README,recalled', r"line 3: confidence is 'recalled'"),
        ('AGW,sysu,all-single,,,,,,Ye,README,original', r'line 3: no number in r1'),
        (
            'AGW,sysu,all-single,,,,47.65,,Ye,quote,quoted',
            r'line 3: mAP of AGW .* already given on line 2',
        ),
    ],
)
def test_reported_csv_refuses_bad_rows_naming_file_and_line(tmp_path, row, message):
    bad = tmp_path / 'bad.csv'
    bad.write_text(BAD_HEAD + GOOD + row + '\n')
    with pytest.raises(ValueError, match=rf'bad.csv {message}'):
        load_reported(bad)
    bad.write_text(BAD_HEAD + GOOD)  # the good row alone loads, as printed
    (rep,) = load_reported(bad)
    assert rep.values == {'R1': 47.5, 'mAP': 47.65} and rep.printed == {
        'R1': '47.50',
        'mAP': '47.65',
    }


def test_reported_csv_refused_when_tables_are_built(tmp_path):
    bad = tmp_path / 'reported.csv'
    bad.write_text(BAD_HEAD + 'AGW,sysu,indoor,54.17,,,,,Ye,README line 9,original\n')
    with pytest.raises(ValueError, match=r"reported.csv line 2: unknown sysu setting 'indoor'"):
        build_tables(FIXTURE, tmp_path / 'out', reported=bad, plots=False)
    assert not (tmp_path / 'out').exists()  # nothing half-written


def test_cli_says_which_reported_line_is_bad(tmp_path, capsys):
    from harness.cli import main

    bad = tmp_path / 'mine.csv'
    bad.write_text(BAD_HEAD + GOOD + 'MMN,sysu,all-single,170.6,,,,,Zhang,README,original\n')
    args = ['tables', '--records', str(FIXTURE), '--out', str(tmp_path / 'o'), '--reported']
    code = main([*args, str(bad), '--no-plots'])
    err = capsys.readouterr().err
    assert code == 2 and 'Traceback' not in err and err.count('error: ') == 1, err
    assert f'{bad} line 3: column r1 is 170.6, outside 0..100' in err


def test_leaderboard_refuses_a_bad_reported_line_before_any_run(tmp_path, capsys):
    """The leaderboard checks reported.csv before it plans or trains, not when it tabulates."""
    from harness.cli import main

    bad = tmp_path / 'mine.csv'
    bad.write_text(BAD_HEAD + 'AGW,sysu,all-single,47.50,,,,,Ye,,original\n')
    out = tmp_path / 'lb'
    argv = ['leaderboard', '--demo', '--methods', 'agw', '--out', str(out), '--dry-run']
    code = main([*argv, '--reported', str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and f'{bad} line 2: no printed_in' in err, err
    assert not (out / 'runs').exists()


def test_reported_csv_errors_name_the_file_and_column(tmp_path):
    bad = tmp_path / 'bad.csv'
    bad.write_text('method,dataset,setting,r1,r10,r20,map\nAGW,sysu,all-single,1,2,3,4\n')
    with pytest.raises(ValueError, match=r'bad.csv: missing column\(s\) confidence, minp'):
        load_reported(bad)


def test_repository_reported_csv_every_cell_sourced():
    """Every number of the shipped file names where it was printed; the contradicted MMN cells
    are fixed and the numbers no source prints are gone (issue 22)."""
    rows = load_reported(Path(__file__).parents[2] / 'results' / 'reported.csv')
    assert {r.method for r in rows} >= {'AGW', 'MPANet', 'MMN', 'CAJ', 'DEEN'}
    assert all(set(r.values) <= {'R1', 'R10', 'R20', 'mAP', 'mINP'} for r in rows)
    assert all(r.source and r.printed_in and r.confidence in ('original', 'quoted') for r in rows)
    for r in rows:  # a README is cited with its line, a paper with its table
        assert re.search(r'README\.md line \d+|Table \d+', r.printed_in), r
    cell = {(r.method, r.dataset, r.setting, m): v for r in rows for m, v in r.values.items()}
    assert cell['MMN', 'sysu', 'indoor-single', 'R10'] == 97.2  # DEEN Table 2, not 99.30
    assert cell['MMN', 'sysu', 'indoor-single', 'R20'] == 99.3
    assert not any(m == 'mINP' for (method, *_, m) in cell if method == 'MMN')
    assert not any(s.endswith('multi') for (method, _, s, _) in cell if method == 'MPANet')
    assert ('AGW', 'regdb', 'v2t', 'R10') not in cell and 'Ours' not in {r.method for r in rows}


def test_latex_compiles_with_pdflatex(built):
    """tables.tex (every table's .tex in one document) compiles as written."""
    out, _ = built
    pdflatex = shutil.which('pdflatex')
    if pdflatex is None:
        msg = (
            'pdflatex not installed (apt-get install texlive-latex-base texlive-latex-recommended)'
        )
        if os.environ.get('CI', '').lower() in ('1', 'true', 'yes'):
            pytest.fail(msg)
        pytest.skip(msg)
    tex = (out / 'tables.tex').read_text()
    assert all(rf'\input{{{n}.tex}}' in tex for n in ('comparison', 'multishot', 'ablation'))
    proc = subprocess.run(
        [pdflatex, '-interaction=nonstopmode', '-halt-on-error', 'tables.tex'],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (out / 'tables.pdf').stat().st_size > 1000
    log = (out / 'tables.log').read_text(errors='replace')
    assert 'Missing character' not in log and 'Undefined control sequence' not in log


def test_latex_marks_blocks_and_podium(built):
    out, _ = built
    tex = (out / 'comparison.tex').read_text()
    assert r'\toprule' in tex and r'\bottomrule' in tex and r'$\pm$' in tex
    lines = tex.splitlines()
    papers = lines.index(r'\multicolumn{14}{l}{\textit{Reported in the papers (real datasets)}} \\')
    runs = lines.index(r'\multicolumn{14}{l}{\textit{This benchmark}} \\')
    assert papers < runs
    assert all('reported' in line for line in lines[papers + 2 : runs - 1])
    assert all('reproduced' in line for line in lines[runs + 2 : runs + 4])
    # All-search R1: MPANet 70.00 best, AGW 50.00 second; quoted cells carry the double dagger.
    assert r'\textbf{70.00}' in tex and r'\underline{50.00}' in tex
    assert r'84.39$^{\ddagger}$' in tex and r'47.50$^{\ddagger}$' not in tex


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
