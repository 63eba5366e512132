"""The leaderboard page in a real browser: Debian's Chromium, driven through chromedriver by
selenium.

The page is built by ``build_tables`` from the records fixture (plus a progress file for its
unfinished run, a figures folder for one run and a re-scored copy of AGW's SYSU record), opened
from disk, sorted by a column (within each block), and every number of a run, re-scored ones
included, is followed to its record.json and recomputed from it. The dot plot loads, the papers'
numbers sit in their own block, and in a narrow window the wide table scrolls inside its box while
the page does not. A screenshot is saved to ``$VIREID_ARTIFACTS/leaderboard.png`` (or the test's
temporary folder) and its path printed.

Without Chromium, chromedriver or selenium the test is skipped, except under CI (``CI=true``),
where ``.ci/run`` installs them and a missing browser is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest

from harness.figures.manifest import write_manifest
from harness.tables import build_tables
from harness.tables.build import GROUPS
from harness.tables.html import run_figures

FIXTURE = Path(__file__).parent / 'fixtures' / 'records'
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
CHROMEDRIVER = shutil.which('chromedriver')
BY_GROUP = {title: key for key, (title, _) in GROUPS.items()}


def _need_browser():
    missing = [
        name
        for name, found in (('chromium', CHROMIUM), ('chromedriver', CHROMEDRIVER))
        if not found
    ]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append('selenium')
    if missing:
        msg = (
            f'{", ".join(missing)} not installed '
            '(apt-get install chromium chromium-driver; pip install selenium)'
        )
        if os.environ.get('CI', '').lower() in ('1', 'true', 'yes'):
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope='module')
def page(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('page')
    records = Path(shutil.copytree(FIXTURE / 'runs', root / 'runs'))
    (records / 'mmn' / 'mmn_regdb' / 'regdb-split1' / 'progress.json').write_text(
        json.dumps(
            dict(stage='train', epoch=3, max_epochs=81, iter=120, iters_per_epoch=348, eta_s=3900.0)
        )
    )
    figures = records / 'agw' / 'agw_sysu' / 'sysu' / 'figures'
    figures.mkdir()
    (figures / 'retrieval.png').write_bytes(b'\x89PNG\r\n\x1a\n')
    figure = {'file': 'retrieval.png', 'kind': 'retrieval', 'caption': 'top-10'}
    (figures / 'index.json').write_text(json.dumps({'schema': 1, 'figures': [figure]}))
    # AGW's authors' weights scored here: a re-scored row whose cells must link like reproduced ones
    official = json.loads((records / 'agw' / 'agw_sysu' / 'sysu' / 'record.json').read_text())
    official['source'] = 'official'
    for res in official['results'].values():
        res['mean'] = {k: v - 1.0 for k, v in res['mean'].items()}
    official['provenance'].update(git_commit='def', official={'md5': '0' * 32, 'file': 'w.t'})
    (records / 'agw' / 'agw_sysu' / 'sysu-official').mkdir()
    (records / 'agw' / 'agw_sysu' / 'sysu-official' / 'record.json').write_text(
        json.dumps(official)
    )
    build_tables(records, root / 'tables', reported=FIXTURE / 'reported.csv', relative_to=root)
    return root / 'tables' / 'index.html'


@pytest.fixture(scope='module')
def browser(page):
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-dev-shm-usage',
        '--window-size=1400,1800',
        f'--user-data-dir={page.parent.parent / "chromium-profile"}',
    ):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    try:
        driver.get(page.as_uri())
        yield driver
    finally:
        driver.quit()


def _column(driver, table: str, col: int, block: str = '') -> list[str]:
    """The values of column ``col`` top to bottom (of one block: 'reported' or 'runs')."""
    return driver.execute_script(
        'return Array.from(document.querySelectorAll(arguments[0] + " tbody" + arguments[2]'
        ' + " tr:not(.block)")).map(r => r.cells[arguments[1]].dataset.value);',
        f'#table-{table}',
        col,
        f'.block-{block}' if block else '',
    )


def _header_index(driver, table: str, group: str, metric: str) -> int:
    return driver.execute_script(
        'return Array.from(document.querySelectorAll(arguments[0] + " thead tr.cols th"))'
        '.findIndex(th => th.title === arguments[1] && th.textContent.trim() === arguments[2]);',
        f'#table-{table}',
        group,
        metric,
    )


def test_page_loads_from_disk_with_nothing_from_the_network(browser, page):
    assert browser.title == 'vireid-bench leaderboard'
    # Everything the page loads (images, scripts, style sheets, frames) resolves to a local file.
    urls = browser.execute_script(
        'return Array.from(document.querySelectorAll("[src], link[href]"))'
        '.map(e => e.src || e.href);'
    )
    assert urls and all(u.startswith('file://') for u in urls), urls
    images = browser.execute_script(
        'return Array.from(document.images).map(i => [i.src, i.naturalWidth]);'
    )
    cmc = [i for i in images if 'cmc_' in i[0]]
    assert len(cmc) == 6 and all(width > 0 for _, width in cmc), images
    dots = [i for i in images if i[0].endswith('/dotplot.png')]
    assert len(dots) == 1 and dots[0][1] > 500, images  # the dot plot loaded
    # The papers' numbers: their own titled block above this benchmark's rows.
    titles = browser.execute_script(
        'return Array.from(document.querySelectorAll("#table-comparison tr.block"))'
        '.map(r => [r.parentElement.className, r.textContent]);'
    )
    assert titles == [
        ['block-reported', 'Reported in the papers (real datasets)'],
        ['block-runs', 'This benchmark'],
    ]
    assert browser.find_elements(
        'css selector', '#table-comparison tbody.block-reported tr.reported'
    )
    assert not browser.find_elements(
        'css selector', '#table-comparison tbody.block-runs tr.reported'
    )


def test_sorting_a_column_reorders_the_rows(browser):
    from selenium.webdriver.common.by import By

    col = _header_index(browser, 'comparison', 'SYSU-MM01 all-search', 'R1')
    assert col > 0
    original = _column(browser, 'comparison', 2)  # Method column
    header = browser.find_elements(By.CSS_SELECTOR, '#table-comparison thead tr.cols th')[col]
    header.click()
    assert header.get_attribute('aria-sort') == 'descending'
    for block in ('reported', 'runs'):  # each block sorts within itself
        values = [float(v) for v in _column(browser, 'comparison', col, block) if v]
        assert values == sorted(values, reverse=True) and len(values) >= 2
    assert _column(browser, 'comparison', 2) != original
    header.click()
    for block in ('reported', 'runs'):
        values = _column(browser, 'comparison', col, block)
        numbers = [float(v) for v in values if v]
        assert numbers == sorted(numbers) and values[len(numbers) :] == [''] * (
            len(values) - len(numbers)
        )
    titles = browser.execute_script(
        'return Array.from(document.querySelectorAll("#table-comparison tbody"))'
        '.map(b => b.rows[0].classList.contains("block"));'
    )
    assert titles == [True, True]  # the block titles stay on top
    browser.find_elements(By.CSS_SELECTOR, '#table-comparison thead tr.cols th')[
        0
    ].click()  # "#" column
    browser.find_elements(By.CSS_SELECTOR, '#table-comparison thead tr.cols th')[
        0
    ].click()  # ascending
    assert _column(browser, 'comparison', 2) == original


def test_every_run_number_equals_its_records(browser, page):
    """Reproduced and re-scored numbers alike link to their records and equal them."""
    cells = browser.execute_script("""
        const out = [];
        document.querySelectorAll('table.sortable').forEach(t => {
          const heads = Array.from(t.querySelectorAll('thead tr.cols th'));
          t.querySelectorAll('tbody tr:not(.reported) td a[data-records]').forEach(a => {
            const th = heads[a.parentElement.cellIndex];
            out.push({group: th.title, metric: th.textContent.trim(), text: a.textContent,
                      runs: a.dataset.records.split(' '), row: a.closest('tr').className});
          });
        });
        return out;""")
    assert len(cells) >= 30
    rescored = [c for c in cells if c['row'] == 'official']
    assert len(rescored) == 16, rescored  # AGW's re-scored SYSU rows: 8 single- + 8 multi-shot
    assert not browser.find_elements('css selector', 'tr.reported a[data-records]')
    rows = {
        r['id']: r
        for r in browser.execute_script("""
        return Array.from(document.querySelectorAll('#runs-table tbody tr')).map(tr => ({
          id: tr.id, href: tr.querySelector('a.record').href,
          commit: tr.querySelector('.commit').textContent,
          seed: tr.querySelector('.seed').textContent,
          device: tr.querySelector('.device').textContent,
          figures: Array.from(tr.cells[10].querySelectorAll('a')).map(a => a.textContent)}));""")
    }
    for cell in cells:
        dataset, setting = BY_GROUP[cell['group']]
        means = []
        for run in cell['runs']:
            record = json.loads(Path(unquote(urlparse(rows[run]['href']).path)).read_text())
            assert record['dataset'] == dataset and record['status'] == 'done'
            prov = record['provenance']
            assert (
                rows[run]['commit'] == prov['git_commit'] and rows[run]['device'] == prov['device']
            )
            assert rows[run]['seed'] == str(prov['seed'])
            means.append(record['results'][setting]['mean'][cell['metric']])
        text = cell['text']
        if dataset == 'sysu':
            record_std = record['results'][setting]['std'][cell['metric']]
            expected = f'{means[0]:.2f} ± {record_std:.2f}'
        else:
            expected = f'{np.mean(means):.2f}' + (
                f' ± {np.std(means):.2f}' if len(means) > 1 else ''
            )
        assert text == expected, (cell, expected)
    assert rows['run-1']['figures'] == ['retrieval']
    official = {r for c in rescored for r in c['runs']}
    assert len(official) == 1
    assert rows[official.pop()]['href'].endswith('/agw/agw_sysu/sysu-official/record.json')


def test_wide_tables_scroll_inside_their_box(browser):
    """In a narrow window the page keeps to the window; the wide comparison table scrolls in its
    box, and no header is cut (each shows its whole text)."""
    size = browser.get_window_size()
    browser.set_window_size(800, size['height'])
    try:
        state = browser.execute_script("""
            const wrap = document.querySelector('#wrap-comparison');
            const heads = Array.from(wrap.querySelectorAll('thead th'));
            return {page: document.documentElement.scrollWidth, window: window.innerWidth,
                    box: wrap.clientWidth, table: wrap.scrollWidth,
                    overflow: getComputedStyle(wrap).overflowX,
                    cut: heads.filter(h => h.scrollWidth > h.clientWidth + 1)
                              .map(h => h.textContent)};""")
        assert state['page'] <= state['window'], state  # no page-wide horizontal scrolling
        assert state['table'] > state['box'] and state['overflow'] == 'auto', state
        assert state['cut'] == [], state
        # Scrolled to its right end, the table keeps its method names in view (sticky columns).
        moved = browser.execute_script("""
            const wrap = document.querySelector('#wrap-comparison');
            wrap.scrollLeft = 10000;
            const method = wrap.querySelector('tbody.block-runs tr:not(.block) td.lead-1');
            const box = wrap.getBoundingClientRect(), cell = method.getBoundingClientRect();
            return {scrolled: wrap.scrollLeft, inside: cell.left >= box.left - 1
                    && cell.right <= box.right + 1, text: method.textContent};""")
        assert moved['scrolled'] > 0 and moved['inside'], moved
        assert moved['text'] == 'AGW'
    finally:
        browser.execute_script('document.querySelector("#wrap-comparison").scrollLeft = 0;')
        browser.set_window_size(size['width'], size['height'])


def test_reported_cells_say_where_they_were_printed(browser):
    titles = browser.execute_script(
        'return Array.from(document.querySelectorAll("#table-comparison tr.reported td[title]"))'
        '.map(td => [td.textContent, td.title]);'
    )
    by_text = dict(titles)
    assert by_text['47.50'].endswith("reported.csv:2; printed in authors' README line 9 (original)")
    assert by_text['84.39‡'].endswith('reported.csv:3; printed in a quoting paper Table 1 (quoted)')


def test_links_progress_and_screenshot(browser, page, tmp_path):
    from selenium.webdriver.common.by import By

    link = browser.find_element(
        By.CSS_SELECTOR, '#table-comparison tr.reproduced td a[data-records]'
    )
    target = link.get_attribute('data-records').split()[0]
    link.click()
    assert browser.execute_script('return location.hash;') == f'#{target}'
    assert browser.execute_script('return document.querySelector(":target").id;') == target
    progress = browser.find_element(By.CSS_SELECTOR, '#running-table td.progress').text
    assert progress == 'epoch 3/81, iter 120/348, ETA 1h05m'
    failed = browser.find_element(By.CSS_SELECTOR, '#failed + ul').text
    assert 'runs/mmn/mmn_sysu/sysu/record.json' in failed
    browser.execute_script('window.scrollTo(0, 0);')
    out = Path(os.environ.get('VIREID_ARTIFACTS') or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    shot = out / 'leaderboard.png'
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    browser.execute_script('document.getElementById("dotplot").scrollIntoView();')
    dots = out / 'leaderboard-dotplot.png'
    assert browser.save_screenshot(str(dots)) and dots.stat().st_size > 10_000
    browser.execute_script('window.scrollTo(0, 0);')
    print(f'leaderboard screenshots: {shot}, {dots}')


def test_figures_are_linked_from_the_manifest_vireid_figures_writes(tmp_path):
    assert run_figures(tmp_path) == []
    (tmp_path / 'figures').mkdir()
    (tmp_path / 'figures' / 'b.png').write_bytes(b'')
    (tmp_path / 'figures' / 'a.svg').write_bytes(b'')
    assert run_figures(tmp_path) == []  # images without a manifest: not ours
    # Kinds and captions come from the manifest; entries whose file is gone are skipped.
    write_manifest(
        tmp_path / 'figures',
        {
            'figures': [
                {'file': 'b.png', 'kind': 'embedding', 'caption': 't-SNE'},
                {'file': 'missing.png', 'kind': 'retrieval'},
            ]
        },
    )
    assert run_figures(tmp_path) == [('embedding', tmp_path / 'figures' / 'b.png', 't-SNE')]
