"""The leaderboard as one static page (``index.html`` beside the tables): browse, sort, trace.

Built from the same :class:`~harness.tables.build.Table` objects as the Markdown, LaTeX and CSV
files, so every number on the page is one of theirs. The page needs no server and loads nothing
from the network (style and the sorting script are inline; CMC plots and records are relative
links), so it opens from disk. Each reproduced number links to the run it came from (commit,
config, seed, device, wall time, and the ``record.json`` itself); reported numbers name their line
in ``reported.csv``. Runs still training show their epoch, iteration and ETA from the progress file
each run keeps (:mod:`harness.engine.progress`); runs that have figures (drawn by
``vireid figures``, listed in ``figures/index.json``) link them.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.engine.progress import format_progress, read_progress
from harness.figures.manifest import FIGURES_DIR, read_manifest
from harness.tables.build import (
    COMPARABLE_MARK,
    OPTIMISTIC_MARK,
    Cell,
    Collection,
    Table,
    best_cells,
)

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 1400px; padding: 0 1em;
       color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .5em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ddd; padding: .25em .5em; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; } td.text, th.text { text-align: left; }
thead tr.cols th { cursor: pointer; user-select: none; }
thead tr.cols th[aria-sort=ascending]::after { content: " \\25B2"; }
thead tr.cols th[aria-sort=descending]::after { content: " \\25BC"; }
tr.reported td { color: #555; background: #fafafa; font-style: italic; }
td.best { font-weight: bold; } .mark { color: #b00; font-weight: bold; }
a { color: #0645ad; text-decoration: none; } a:hover { text-decoration: underline; }
tr:target, tr.hit { background: #fff3b0 !important; }
.warning { background: #ffe0e0; border: 2px solid #b00; padding: .6em 1em; font-weight: bold; }
.notes li { margin: .2em 0; } .plots img { max-width: 32%; margin: .3em; border: 1px solid #ddd; }
.small { color: #666; font-size: .9em; }
"""

# Sorting: click a column header; click again to reverse. Empty cells sort last either way;
# the "#" column restores the original order (each reproduced row followed by its reported rows).
SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  var heads = table.querySelectorAll('thead tr.cols th');
  heads.forEach(function (th, col) {
    th.addEventListener('click', function () {
      var dir = th.getAttribute('aria-sort') === 'descending' ? 'ascending' :
                th.getAttribute('aria-sort') === 'ascending' ? 'descending' :
                (th.dataset.type === 'num' ? 'descending' : 'ascending');
      heads.forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', dir);
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var key = function (row) {
        var v = row.cells[col].dataset.value;
        if (v === undefined || v === '') { return null; }
        return th.dataset.type === 'num' ? parseFloat(v) : v.toLowerCase();
      };
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null || y === null) { return (x === null) - (y === null); }
        var c = x < y ? -1 : x > y ? 1 : 0;
        return dir === 'ascending' ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _href(target: Path, page_dir: Path) -> str:
    """A relative link from the page to ``target`` (the page is opened from disk)."""
    return Path(os.path.relpath(Path(target).resolve(), Path(page_dir).resolve())).as_posix()


class _Runs:
    """Every record the page refers to, numbered, with its provenance for the runs table."""

    def __init__(self, coll: Collection, base: Path) -> None:
        self.base = Path(base)
        self.ids: dict[str, str] = {}
        self.records: dict[str, dict] = {}
        for e in coll.entries:
            slots = [x for x in (e.sysu, e.llcm) if x] + [e.regdb[s] for s in sorted(e.regdb)]
            for rel, rec in slots:
                self.add(rel, rec)

    def add(self, rel: str, rec: dict) -> str:
        if rel not in self.ids:
            self.ids[rel] = f'run-{len(self.ids) + 1}'
            self.records[rel] = rec
        return self.ids[rel]

    def path(self, rel: str) -> Path:
        return self.base / rel


def _provenance(rec: dict) -> dict[str, str]:
    prov = rec.get('provenance') or {}
    wall = prov.get('wall_time_s')
    return {
        'commit': str(prov.get('git_commit') or ''),
        'config': str(rec.get('config') or ''),
        'seed': '' if prov.get('seed') is None else str(prov.get('seed')),
        'device': str(prov.get('device') or ''),
        'wall time': ''
        if wall is None
        else f'{float(wall) / 3600:.2f} h'
        if wall >= 3600
        else f'{float(wall):.0f} s',
        'finished': str(prov.get('finished') or ''),
    }


def _cell_html(
    cell: Cell | None, reproduced: bool, best: bool, runs: _Runs, col_metric: str
) -> str:
    if cell is None:
        return '<td data-value=""></td>'
    marks = ''
    if not cell.comparable:
        marks += (
            f'<span class="mark" title="not comparable: the run departs from the protocol">'
            f'{COMPARABLE_MARK}</span>'
        )
    if cell.optimistic:
        marks += (
            f'<span class="mark" title="optimistic: checkpoint chosen by its test score">'
            f'{OPTIMISTIC_MARK}</span>'
        )
    text = f'{cell.mean:.2f}' + (f' ± {cell.std:.2f}' if cell.std is not None else '')
    cls = ' class="best"' if best else ''
    if not reproduced:
        src = ', '.join(cell.paths)
        return f'<td{cls} data-value="{cell.mean!r}" title="{_e(src)}">{_e(text)}{marks}</td>'
    ids = [runs.ids[p] for p in cell.paths if p in runs.ids]
    lines = []
    for p in cell.paths:
        rec = runs.records.get(p, {})
        prov = _provenance(rec)
        split = f' split {rec.get("split")}' if rec.get('dataset') == 'regdb' else ''
        lines.append(
            f'{p}{split}: commit {prov["commit"]}, config {prov["config"]}, seed {prov["seed"]}, '
            f'device {prov["device"]}, wall time {prov["wall time"]}'
        )
    title = (
        f'{col_metric}: '
        + (f'mean of {len(cell.paths)} runs\n' if len(cell.paths) > 1 else '')
        + '\n'.join(lines)
    )
    link = (
        f'<a href="#{ids[0]}" data-records="{" ".join(ids)}" title="{_e(title)}">{_e(text)}</a>'
        if ids
        else _e(text)
    )
    return f'<td{cls} data-value="{cell.mean!r}">{link}{marks}</td>'


def _table_html(table: Table, runs: _Runs) -> str:
    best = best_cells(table)
    lead = ['#'] + (['Row'] if table.row_ids else []) + ['Method', 'Source']
    groups: list[tuple[str, int]] = []
    for c in table.columns:
        if groups and groups[-1][0] == c.group:
            groups[-1] = (c.group, groups[-1][1] + 1)
        else:
            groups.append((c.group, 1))
    top = (
        f'<th colspan="{len(lead)}"></th>'
        + ''.join(f'<th colspan="{n}">{_e(g)}</th>' for g, n in groups)
        + '<th></th>'
    )
    heads = [
        f'<th class="text" data-type="{"num" if h == "#" else "text"}">{_e(h)}</th>' for h in lead
    ]
    heads += [
        f'<th data-type="num" title="{_e(c.group)}">{_e(c.metric)}</th>' for c in table.columns
    ]
    heads.append('<th class="text" data-type="text">Notes</th>')
    body = []
    for i, r in enumerate(table.rows):
        cls = 'reproduced' if r.reproduced else 'reported'
        cells = [f'<td data-value="{i + 1}">{i + 1}</td>']
        if table.row_ids:
            cells.append(
                f'<td class="text" data-value="{_e(r.row_id or "")}">{_e(r.row_id or "")}</td>'
            )
        cells.append(f'<td class="text" data-value="{_e(r.label)}">{_e(r.label)}</td>')
        cells.append(f'<td class="text" data-value="{_e(r.source)}">{_e(r.source)}</td>')
        cells += [
            _cell_html(c, r.reproduced, (i, j) in best, runs, table.columns[j].header)
            for j, c in enumerate(r.cells)
        ]
        cells.append(f'<td class="text" data-value="{_e(r.notes)}">{_e(r.notes)}</td>')
        body.append(f'<tr class="{cls}">' + ''.join(cells) + '</tr>')
    notes = ''.join(f'<li>{_e(n)}</li>' for n in table.footnotes)
    return (
        f'<h2 id="{_e(table.name)}">{_e(table.title)}</h2>\n'
        f'<table class="sortable" id="table-{_e(table.name)}"><thead><tr class="groups">{top}</tr>'
        f'<tr class="cols">{"".join(heads)}</tr></thead>\n<tbody>\n'
        + '\n'.join(body)
        + f'\n</tbody></table>\n<ul class="notes">{notes}</ul>\n'
    )


def run_figures(run_dir: Path) -> list[tuple[str, Path, str]]:
    """``(label, file, caption)`` of the figures ``vireid figures`` drew for a run, as its
    manifest (:mod:`harness.figures.manifest`) lists them; none without a manifest."""
    manifest = read_manifest(run_dir) or {}
    folder = Path(run_dir) / FIGURES_DIR
    out = []
    for entry in manifest.get('figures', []):
        name = entry.get('file') if isinstance(entry, dict) else None
        if isinstance(name, str) and (folder / name).is_file():
            label = entry.get('kind') or Path(name).stem
            out.append((str(label), folder / name, str(entry.get('caption') or '')))
    return out


def _runs_html(runs: _Runs, page_dir: Path) -> str:
    rows = []
    for rel, run_id in runs.ids.items():
        rec = runs.records[rel]
        prov = _provenance(rec)
        entry = rec.get('entry') or {}
        label = str(entry.get('label') or rec.get('method_title') or rec.get('method') or '')
        where = rec.get('dataset', '') + (
            f' split {rec.get("split")}' if rec.get('dataset') == 'regdb' else ''
        )
        figures = run_figures(runs.path(rel).parent)
        figs = ' '.join(
            f'<a href="{_e(_href(f, page_dir))}" title="{_e(caption)}">{_e(label)}</a>'
            for label, f, caption in figures
        )
        rows.append(
            f'<tr id="{run_id}"><td class="text">{run_id}</td><td class="text">{_e(label)}</td>'
            f'<td class="text">{_e(where)}</td><td class="text commit">{_e(prov["commit"])}</td>'
            f'<td class="text config">{_e(prov["config"])}</td>'
            f'<td class="seed">{_e(prov["seed"])}</td>'
            f'<td class="text device">{_e(prov["device"])}</td>'
            f'<td class="wall">{_e(prov["wall time"])}</td>'
            f'<td class="text">{_e(prov["finished"])}</td>'
            f'<td class="text"><a class="record" href="{_e(_href(runs.path(rel), page_dir))}">'
            f'{_e(rel)}</a></td>'
            f'<td class="text">{figs}</td></tr>'
        )
    head = ''.join(
        f'<th class="text">{h}</th>'
        for h in (
            'run',
            'entry',
            'data',
            'commit',
            'config',
            'seed',
            'device',
            'wall time',
            'finished',
            'record',
            'figures',
        )
    )
    return (
        '<h2 id="runs">Runs behind the numbers</h2>\n'
        '<p class="small">Every reproduced number above links '
        'here; each record.json holds the full provenance (package versions, dataset fingerprint, '
        'host, job id) and every per-trial result.</p>\n'
        f'<table id="runs-table"><thead><tr>{head}</tr></thead><tbody>\n'
        + '\n'.join(rows)
        + '\n</tbody></table>\n'
    )


def _status_html(coll: Collection, base: Path) -> str:
    parts = []
    if coll.incomplete:
        rows = []
        for rel, rec in coll.incomplete:
            prog = read_progress((base / rel).parent)
            rows.append(
                f'<tr><td class="text">{_e(rel)}</td><td class="text">{_e(rec.get("status"))}</td>'
                f'<td class="text progress">'
                f'{_e(format_progress(prog) if prog else "no progress file yet")}</td></tr>'
            )
        parts.append(
            '<h2 id="running">Runs in progress (not tabulated)</h2>\n'
            '<table id="running-table"><thead><tr>'
            '<th class="text">record</th><th class="text">status</th><th class="text">progress</th>'
            '</tr></thead><tbody>\n' + '\n'.join(rows) + '\n</tbody></table>\n'
        )
    if coll.failed:
        items = []
        for rel, rec in coll.failed:
            err = rec.get('error') or {}
            msg = (
                f'{err.get("type", "Error")}: {err.get("message", "")}'
                if isinstance(err, dict)
                else str(err)
            )
            items.append(f'<li><code>{_e(rel)}</code>: {_e(" ".join(msg.split())[:300])}</li>')
        parts.append(
            '<h2 id="failed">Failed runs (not tabulated)</h2>\n<ul>' + ''.join(items) + '</ul>\n'
        )
    return ''.join(parts)


def leaderboard_page(
    tables: Iterable[Table],
    coll: Collection,
    base: str | Path,
    page_dir: str | Path,
    plots: Iterable[Path] = (),
    reported: str | Path | None = None,
    generated: str = '',
) -> str:
    """The whole page as HTML text; links are relative to ``page_dir``, where it will be written.

    ``base`` is the folder the tables' record paths are relative to; ``reported`` the reported
    results file used (None: the page says loudly that reported rows are missing).
    """
    tables, base, page_dir = list(tables), Path(base), Path(page_dir)
    runs = _Runs(coll, base)
    nav = ' · '.join(f'<a href="#{_e(t.name)}">{_e(t.name)}</a>' for t in tables)
    plots = [Path(p) for p in plots if Path(p).suffix == '.png']
    nav += ' · <a href="#cmc">CMC plots</a>' if plots else ''
    nav += ' · <a href="#runs">runs</a>'
    if coll.incomplete:
        nav += ' · <a href="#running">in progress</a>'
    if coll.failed:
        nav += ' · <a href="#failed">failed</a>'
    head = (
        f'<p class="small">Generated {_e(generated)} from the records under '
        f'<code>{_e(coll.root)}</code>. '
        'Click a column header to sort (again to reverse; "#" restores the original order). '
        f'Marks: {COMPARABLE_MARK} not comparable (the run changed the protocol), '
        f'{OPTIMISTIC_MARK} optimistic '
        "(checkpoint chosen on the test set). Reported rows (italic) are the papers' numbers.</p>"
    )
    if reported is None:
        head += (
            '<p class="warning" id="no-reported">The papers\' reported numbers were not found, '
            'so no '
            'reported row is shown: pass --reported FILE to vireid tables.</p>'
        )
    else:
        head += (
            f'<p class="small">Reported numbers: <a href="{_e(_href(Path(reported), page_dir))}">'
            f'{_e(Path(reported).name)}</a> (each cell names its line).</p>'
        )
    body = [_table_html(t, runs) for t in tables] or ['<p>No finished run records were found.</p>']
    if plots:
        imgs = ''.join(
            f'<a href="{_e(_href(p, page_dir))}">'
            f'<img src="{_e(_href(p, page_dir))}" alt="{_e(p.stem)}">'
            '</a>'
            for p in plots
        )
        body.append(f'<h2 id="cmc">CMC curves</h2>\n<div class="plots">{imgs}</div>\n')
    body.append(_runs_html(runs, page_dir))
    body.append(_status_html(coll, base))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<title>vireid-bench leaderboard</title>\n<style>{STYLE}</style></head>\n<body>\n'
        f'<h1>vireid-bench leaderboard</h1>\n<nav>{nav}</nav>\n{head}\n'
        + '\n'.join(body)
        + f'\n<script>{SCRIPT}</script>\n</body></html>\n'
    )
