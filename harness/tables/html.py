"""The leaderboard as one static page (``index.html`` beside the tables): browse, sort, trace.

Built from the same :class:`~harness.tables.build.Table` objects as the Markdown, LaTeX and CSV
files, so every number on the page is one of theirs. The page needs no server and loads nothing
from the network (style and the sorting script are inline; CMC plots and records are relative
links), so it opens from disk. Each reproduced number links to the run it came from (commit,
config, seed, device, wall time, and the ``record.json`` itself); reported numbers name their line
in ``reported.csv`` and where they were printed (a number only a later paper quotes is marked).
The papers' numbers form their own block at the top of each table; re-scored and untrained
numbers link to their records like reproduced ones. Wide tables scroll inside their box, not the
page. A dot plot (``dotplot.png``) shows each method's reported, re-scored, reproduced and untrained
numbers side by side. Runs still training show their epoch, iteration and ETA from the progress file
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
    QUOTED_MARK,
    Cell,
    Collection,
    Reported,
    Row,
    Table,
    podium,
)

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 1400px; padding: 0 1em;
       color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
.table-wrap { overflow-x: auto; max-width: 100%; margin: .5em 0; border: 1px solid #eee; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ddd; padding: .25em .5em; text-align: right; white-space: nowrap; }
tbody tr.block th { text-align: left; background: #e8eef7; font-style: normal; }
tbody tr.block th span { position: sticky; left: .5em; }
/* The lead columns (#, row, method, source) stay in view while a wide table scrolls sideways. */
.lead { position: sticky; z-index: 1; background: #fff; }
th.lead { background: #f4f4f4; } tr.reported td.lead { background: #fafafa; }
th { background: #f4f4f4; } td.text, th.text { text-align: left; }
thead tr.cols th { cursor: pointer; user-select: none; }
thead tr.cols th[aria-sort=ascending]::after { content: " \\25B2"; }
thead tr.cols th[aria-sort=descending]::after { content: " \\25BC"; }
tr.reported td { color: #555; background: #fafafa; font-style: italic; }
tr.untrained td { color: #777; }
td.best { font-weight: bold; } td.second a, td.second span.num { text-decoration: underline; }
.mark { color: #b00; font-weight: bold; } .mark.quoted { color: #7a4f00; }
a { color: #0645ad; text-decoration: none; } a:hover { text-decoration: underline; }
tr:target, tr.hit { background: #fff3b0 !important; }
.warning { background: #ffe0e0; border: 2px solid #b00; padding: .6em 1em; font-weight: bold; }
.notes li { margin: .2em 0; } .plots img { max-width: 32%; margin: .3em; border: 1px solid #ddd; }
.dotplot img { max-width: 100%; border: 1px solid #ddd; }
.small { color: #666; font-size: .9em; }
"""

# Sorting: click a column header; click again to reverse. Each block (the papers' numbers, this
# benchmark's rows) sorts within itself, empty cells last either way; the "#" column restores the
# original order.
SCRIPT = """
function sortBody(body, col, dir, numeric) {
  var rows = Array.prototype.filter.call(body.rows, function (r) {
    return !r.classList.contains('block');
  });
  var key = function (row) {
    var v = row.cells[col].dataset.value;
    if (v === undefined || v === '') { return null; }
    return numeric ? parseFloat(v) : v.toLowerCase();
  };
  rows.sort(function (a, b) {
    var x = key(a), y = key(b);
    if (x === null || y === null) { return (x === null) - (y === null); }
    var c = x < y ? -1 : x > y ? 1 : 0;
    return dir === 'ascending' ? c : -c;
  });
  rows.forEach(function (r) { body.appendChild(r); });
}
// Sticky lead columns need their left offsets: the widths of the lead columns before them.
function pinLeads(table) {
  var left = 0;
  table.querySelectorAll('thead tr.cols th.lead').forEach(function (th, k) {
    table.querySelectorAll('.lead-' + k).forEach(function (c) { c.style.left = left + 'px'; });
    left += th.getBoundingClientRect().width;
  });
}
document.querySelectorAll('table.sortable').forEach(function (table) {
  pinLeads(table);
  var heads = table.querySelectorAll('thead tr.cols th');
  heads.forEach(function (th, col) {
    th.addEventListener('click', function () {
      var dir = th.getAttribute('aria-sort') === 'descending' ? 'ascending' :
                th.getAttribute('aria-sort') === 'ascending' ? 'descending' :
                (th.dataset.type === 'num' ? 'descending' : 'ascending');
      heads.forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', dir);
      Array.prototype.forEach.call(table.tBodies, function (body) {
        sortBody(body, col, dir, th.dataset.type === 'num');
      });
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
    cell: Cell | None,
    row: Row,
    place: int,
    runs: _Runs,
    col_metric: str,
    papers: dict[str, Reported],
) -> str:
    """One number: a run's links to its records; a paper's says where it was printed."""
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
    if cell.quoted:
        marks += (
            '<span class="mark quoted" title="quoted: printed by a later paper that quotes the '
            f'method; the original could not be read">{QUOTED_MARK}</span>'
        )
    text = cell.number() + (f' ± {cell.std:.2f}' if cell.std is not None else '')
    cls = {1: ' class="best"', 2: ' class="second"'}.get(place, '')
    if not row.from_records:
        lines = []
        for path in cell.paths:
            paper = papers.get(path)
            where = f'printed in {paper.printed_in} ({paper.confidence})' if paper else ''
            lines.append('; '.join(filter(None, [path, where])))
        title = f'{col_metric}: ' + '\n'.join(lines)
        return (
            f'<td{cls} data-value="{cell.mean!r}" title="{_e(title)}">'
            f'<span class="num">{_e(text)}</span>{marks}</td>'
        )
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
        f'{col_metric} ({row.source}): '
        + (f'mean of {len(cell.paths)} runs\n' if len(cell.paths) > 1 else '')
        + '\n'.join(lines)
    )
    link = (
        f'<a href="#{ids[0]}" data-records="{" ".join(ids)}" title="{_e(title)}">{_e(text)}</a>'
        if ids
        else _e(text)
    )
    return f'<td{cls} data-value="{cell.mean!r}">{link}{marks}</td>'


def _table_html(table: Table, runs: _Runs, papers: dict[str, Reported]) -> str:
    best, second = podium(table)
    lead = ['#'] + (['Row'] if table.row_ids else []) + ['Method', 'Source']
    groups: list[tuple[str, int]] = []
    for c in table.columns:
        if groups and groups[-1][0] == c.group:
            groups[-1] = (c.group, groups[-1][1] + 1)
        else:
            groups.append((c.group, 1))
    top = (
        f'<th colspan="{len(lead)}" class="lead lead-0"></th>'
        + ''.join(f'<th colspan="{n}">{_e(g)}</th>' for g, n in groups)
        + '<th></th>'
    )
    heads = [
        f'<th class="text lead lead-{k}" data-type="{"num" if h == "#" else "text"}">{_e(h)}</th>'
        for k, h in enumerate(lead)
    ]
    heads += [
        f'<th data-type="num" title="{_e(c.group)}">{_e(c.metric)}</th>' for c in table.columns
    ]
    heads.append('<th class="text" data-type="text">Notes</th>')
    width = len(lead) + len(table.columns) + 1
    bodies = []
    for title, indices in table.blocks():
        kind = 'reported' if indices and not table.rows[indices[0]].from_records else 'runs'
        body = (
            [f'<tr class="block"><th colspan="{width}"><span>{_e(title)}</span></th></tr>']
            if title
            else []
        )
        for i in indices:
            r = table.rows[i]
            cls = r.source_kind if r.from_records else 'reported'
            texts = [str(i + 1)] + ([r.row_id or ''] if table.row_ids else []) + [r.label, r.source]
            cells = [
                f'<td class="{"" if k == 0 else "text "}lead lead-{k}" data-value="{_e(t)}">'
                f'{_e(t)}</td>'
                for k, t in enumerate(texts)
            ]
            cells += [
                _cell_html(
                    c,
                    r,
                    1 if (i, j) in best else 2 if (i, j) in second else 0,
                    runs,
                    table.columns[j].header,
                    papers,
                )
                for j, c in enumerate(r.cells)
            ]
            cells.append(f'<td class="text" data-value="{_e(r.notes)}">{_e(r.notes)}</td>')
            body.append(f'<tr class="{cls}">' + ''.join(cells) + '</tr>')
        bodies.append(f'<tbody class="block-{kind}">\n' + '\n'.join(body) + '\n</tbody>')
    notes = ''.join(f'<li>{_e(n)}</li>' for n in table.footnotes)
    if best:
        notes += '<li>Bold: the best reproduced value of each column; underlined: the second.</li>'
    return (
        f'<h2 id="{_e(table.name)}">{_e(table.title)}</h2>\n'
        f'<div class="table-wrap" id="wrap-{_e(table.name)}">'
        f'<table class="sortable" id="table-{_e(table.name)}"><thead><tr class="groups">{top}</tr>'
        f'<tr class="cols">{"".join(heads)}</tr></thead>\n'
        + '\n'.join(bodies)
        + f'\n</table></div>\n<ul class="notes">{notes}</ul>\n'
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
        '<p class="small">Every number of a run above (re-scored, reproduced, untrained) links '
        'here; each record.json holds the full provenance (package versions, dataset fingerprint, '
        'host, job id) and every per-trial result.</p>\n'
        f'<div class="table-wrap"><table id="runs-table"><thead><tr>{head}</tr></thead><tbody>\n'
        + '\n'.join(rows)
        + '\n</tbody></table></div>\n'
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
            '<div class="table-wrap"><table id="running-table"><thead><tr>'
            '<th class="text">record</th><th class="text">status</th><th class="text">progress</th>'
            '</tr></thead><tbody>\n' + '\n'.join(rows) + '\n</tbody></table></div>\n'
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
    papers: Iterable[Reported] = (),
    dotplot: Path | None = None,
) -> str:
    """The whole page as HTML text; links are relative to ``page_dir``, where it will be written.

    ``base`` is the folder the tables' record paths are relative to; ``reported`` the reported
    results file used (None: the page says loudly that reported rows are missing) and ``papers``
    its rows (each reported cell's tooltip says where it was printed); ``plots`` the CMC plots and
    ``dotplot`` the picture of every method's numbers (:func:`harness.tables.plots.dot_plot`).
    """
    tables, base, page_dir = list(tables), Path(base), Path(page_dir)
    runs = _Runs(coll, base)
    name = Path(reported).name if reported else 'reported.csv'
    by_line = {f'{name}:{r.line}': r for r in papers}
    nav = ' · '.join(f'<a href="#{_e(t.name)}">{_e(t.name)}</a>' for t in tables)
    plots = [Path(p) for p in plots if Path(p).suffix == '.png']
    nav += ' · <a href="#dotplot">dot plot</a>' if dotplot else ''
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
        f"(checkpoint chosen on the test set), {QUOTED_MARK} quoted (a paper's number printed "
        'only by a later paper that quotes it). Reported rows (italic, in their own block) are the '
        "papers' numbers on the real datasets; every other number links to its run.</p>"
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
    body = [_table_html(t, runs, by_line) for t in tables] or [
        '<p>No finished run records were found.</p>'
    ]
    if dotplot:
        src = _e(_href(dotplot, page_dir))
        body.append(
            '<h2 id="dotplot">Every method at a glance</h2>\n'
            '<p class="small">Per setting and method: reported (the papers, real data; hollow when '
            'quoted), re-scored (official weights), reproduced and untrained, as mean ± std over '
            "the SYSU-MM01 trials or RegDB splits. The papers' numbers are drawn only beside runs "
            'on the real datasets, never beside synthetic demo runs.</p>\n'
            f'<div class="dotplot"><a href="{src}"><img src="{src}" alt="dot plot of every '
            'method\'s numbers" id="dotplot-img"></a></div>\n'
        )
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
