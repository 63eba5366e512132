"""Untrained rows: a record's ``source`` puts it in its own row, after the reproduced row of its
method and below the papers' block; cells.csv keeps the source; the notes give the chance level;
plots dash it. Demo tables keep the papers' real-data numbers in their own, labelled block."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from harness.tables import build_tables
from harness.tables.build import (
    REPORTED_BLOCK_BESIDE_DEMO,
    ROW_SOURCES,
    best_cells,
    collect,
    load_reported,
    make_tables,
)
from harness.tables.plots import cmc_plots, curve_label, dot_points

REPORTED = (
    'method,dataset,setting,r1,r10,r20,map,minp,source,printed_in,confidence,venue,year,'
    'eval_protocol\n'
    'AGW,sysu,all-single,47.50,84.39,92.14,47.65,,Ye et al.,README line 9,original,TPAMI,2021,'
    'sysu-agw\n'
)


def _setting(r1: float, trials: int = 10) -> dict:
    # (metrics are percentages: an untrained row's low R1 must not give a negative mINP)
    mean = {'R1': r1, 'R10': r1 + 20, 'R20': r1 + 30, 'mAP': r1 + 2, 'mINP': max(r1 - 5, 0.0)}
    return {
        'per_trial': [dict(mean) for _ in range(trials)],
        'mean': mean,
        'std': {k: 0.5 for k in mean},
        'cmc': list(np.linspace(r1, min(100.0, r1 + 30), 20)),
    }


def _write(
    root: Path,
    leaf: str,
    dataset: str,
    r1: float,
    source: str | None,
    split: int | None = None,
    kind: str = 'demo',
    label: str = 'AGW (demo)',
) -> None:
    settings = (
        ('all-single', 'all-multi', 'indoor-single', 'indoor-multi')
        if dataset == 'sysu'
        else ('v2t', 't2v')
    )
    rec = {
        'schema': 1,
        'status': 'done',
        'method': 'agw',
        'method_title': 'AGW',
        'config': 'agw_demo.py',
        'entry': {'method': 'agw', 'kind': kind, 'label': label, 'row': None},
        'dataset': dataset,
        'split': split,
        'comparable': True,
        'optimistic': False,
        'results': {s: _setting(r1) for s in settings},
        'gallery_ids': {
            s: (50 if s.startswith('all') else 29) if dataset == 'sysu' else 60 for s in settings
        },
        'provenance': {'finished': '2026-01-01T00:00:00+00:00'},
    }
    if source is not None:  # records written before sources existed have none: 'reproduced'
        rec['source'] = source
    path = root / 'runs' / 'agw' / 'agw_demo' / leaf / 'record.json'
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(rec))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    _write(tmp_path, 'sysu-untrained', 'sysu', 4.0, 'untrained', kind='full', label='AGW')
    _write(tmp_path, 'sysu', 'sysu', 40.0, None, kind='full', label='AGW')
    _write(tmp_path, 'regdb-split1', 'regdb', 45.0, 'reproduced', split=1, kind='full', label='AGW')
    _write(
        tmp_path,
        'regdb-split1-untrained',
        'regdb',
        3.0,
        'untrained',
        split=1,
        kind='full',
        label='AGW',
    )
    (tmp_path / 'reported.csv').write_text(REPORTED)
    return tmp_path


def test_demo_tables_keep_the_papers_numbers_in_their_own_block(tmp_path: Path) -> None:
    """One rule for every rendering: beside synthetic demo runs the papers' numbers sit in a block
    titled as real-data numbers, labelled with the paper's method name, never as a demo row."""
    _write(tmp_path, 'sysu', 'sysu', 40.0, 'reproduced')
    _write(tmp_path, 'sysu-untrained', 'sysu', 4.0, 'untrained')
    (tmp_path / 'reported.csv').write_text(REPORTED)
    out = tmp_path / 'tables'
    built = build_tables(
        tmp_path / 'runs', out, reported=tmp_path / 'reported.csv', relative_to=tmp_path
    )
    md = built['comparison']
    rows = [line.split('|')[1:3] for line in md.splitlines() if line.startswith('| ')][1:]
    rows = [[c.strip() for c in r] for r in rows]
    assert rows == [
        [f'**{REPORTED_BLOCK_BESIDE_DEMO}**', ''],
        ['AGW', 'reported (TPAMI 2021)'],
        ['**This benchmark (synthetic demo data)**', ''],
        ['AGW (demo)', 'reproduced (demo)'],
        ['AGW (demo)', 'untrained (demo)'],
    ]
    assert 'synthetic data (demo)' in md and 'are no target for them' in md
    # LaTeX: the same two titled blocks; no paper number on a '(demo)' line.
    tex = (out / 'comparison.tex').read_text()
    assert tex.index(REPORTED_BLOCK_BESIDE_DEMO) < tex.index('This benchmark (synthetic demo data)')
    assert not [line for line in tex.splitlines() if '(demo)' in line and 'reported' in line]
    # The page: the paper's row in its own tbody, under the title row.
    page = (out / 'index.html').read_text()
    block = page[page.index('<tbody class="block-reported">') :]
    block = block[: block.index('</tbody>')]
    assert REPORTED_BLOCK_BESIDE_DEMO in block and '(demo)' not in block.replace(
        REPORTED_BLOCK_BESIDE_DEMO, ''
    )
    # cells.csv: the paper's numbers under the paper's method name, not the demo entry.
    cells = list(csv.DictReader(io.StringIO((out / 'cells.csv').read_text())))
    papers = [c for c in cells if c['source'] == 'reported']
    assert papers and {(c['label'], c['kind']) for c in papers} == {('AGW', 'paper')}
    assert {c['label'] for c in cells if c['source'] != 'reported'} == {'AGW (demo)'}
    # The dot plot draws no paper number beside a demo run.
    coll = collect(tmp_path / 'runs', relative_to=tmp_path)
    rep = load_reported(tmp_path / 'reported.csv')
    (panel,) = dot_points(coll, rep, 'sysu', 'all-single', 'R1')
    assert panel[0] == 'AGW (demo)' and [s for s, *_ in panel[1]] == ['reproduced', 'untrained']


def test_rows_follow_source_order_and_best_ignores_untrained(folder: Path) -> None:
    assert ROW_SOURCES == ('reported', 'official', 'reproduced', 'untrained')
    coll = collect(folder / 'runs', relative_to=folder)
    assert sorted(e.source for e in coll.entries) == ['reproduced', 'untrained']
    comparison = make_tables(coll, load_reported(folder / 'reported.csv'))[0]
    assert [r.source for r in comparison.rows] == [
        'reported (TPAMI 2021)',
        'reproduced',
        'untrained',
    ]
    untrained = comparison.rows[2]
    assert untrained.label == 'AGW' and not untrained.reproduced
    assert untrained.cells[0].mean == 4.0 and untrained.cells[-2].mean == 3.0  # All R1, T->V R1
    assert untrained.records == [
        'runs/agw/agw_demo/regdb-split1-untrained/record.json',
        'runs/agw/agw_demo/sysu-untrained/record.json',
    ]
    # the untrained row is never the best, even where it would be (no reproduced RegDB cell here)
    assert all(i == 1 for i, _ in best_cells(comparison))
    titles = [title for title, _ in comparison.blocks()]
    assert titles == ['Reported in the papers (real datasets)', 'This benchmark']
    notes = ' '.join(comparison.footnotes)
    assert 'untrained: the network of the reproduced row with the initial weights' in notes
    assert (
        'Chance Rank-1 (1 / gallery identities, %): All 1/50 = 2.00; Indoor 1/29 = 3.45; '
        'V→T 1/60 = 1.67; T→V 1/60 = 1.67.' in notes
    )


def test_cells_csv_and_markdown_carry_the_source(folder: Path) -> None:
    out = folder / 'tables'
    built = build_tables(
        folder / 'runs', out, reported=folder / 'reported.csv', plots=False, relative_to=folder
    )
    rows = list(csv.DictReader(io.StringIO((out / 'cells.csv').read_text())))
    assert [r['source'] for r in rows if r['metric'] == 'R1' and r['setting'] == 'all-single'] == [
        'reported',
        'reproduced',
        'untrained',
    ]
    untrained = {
        (r['dataset'], r['setting'], r['metric']): r for r in rows if r['source'] == 'untrained'
    }
    assert float(untrained[('sysu', 'all-single', 'mAP')]['mean']) == 6.0
    assert (
        untrained[('regdb', 'v2t', 'R1')]['record_paths']
        == 'runs/agw/agw_demo/regdb-split1-untrained/record.json'
    )
    md = built['comparison']
    assert md.index('| reported') < md.index('| reproduced ') < md.index('| untrained ')
    assert 'Chance Rank-1' in md


def test_cmc_legends_and_integer_rank_ticks(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.pyplot as plt

    figures = []
    close = plt.close
    monkeypatch.setattr(plt, 'close', figures.append)
    coll = collect(folder / 'runs', relative_to=folder)
    written = cmc_plots(coll, folder / 'plots')
    assert len(written) == len(figures) == 6
    ax = figures[0].axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ['AGW', 'AGW untrained']
    solid, dashed = ax.get_lines()
    assert solid.get_linestyle() == '-' and dashed.get_linestyle() == '--'
    assert solid.get_color() == dashed.get_color()
    ticks = [t for t in ax.get_xticks() if 1 <= t <= 20]
    assert ticks and all(float(t).is_integer() for t in ticks)
    for fig in figures:
        close(fig)
    demo = next(e for e in coll.entries if e.source == 'reproduced')
    demo.kind = 'demo'
    assert curve_label(demo) == 'AGW (demo)'  # '(demo)' once when the label lacks it
    demo.label = 'AGW (demo)'
    assert curve_label(demo) == 'AGW (demo)'  # ...and not twice when it has it
