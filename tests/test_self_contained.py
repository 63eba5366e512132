"""The repository stands on its own: no file points to a document outside it, and links resolve.

Design notes, sources and deviations live in docs/ and the method READMEs, in the project's own
words with the official repositories and papers cited. A reference to a working document that is
not shipped (a section of a spec, a specs folder, the engine notes, a development machine path) is
useless to anyone who clones the project; this test fails on the first one any branch adds.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {'.git', '.venv', 'work_dirs', 'site', 'build', 'dist', '__pycache__', '.tox', 'data'}
TEXT_SUFFIXES = {
    '.py',
    '.md',
    '.txt',
    '.toml',
    '.ini',
    '.cfg',
    '.yml',
    '.yaml',
    '.json',
    '.csv',
    '.tex',
    '',
}

# (pattern, what it points to). Written with character classes so this file does not match itself.
FORBIDDEN = [
    (r'/wor[k]/', 'a path on the development machine'),
    (r'(\.\./)+share[d]\b|\bshare[d]/(spec|style)', 'the shared working folder'),
    (r'\bspec[s]/', 'a folder of outside design documents'),
    (r'engine_note[s]', 'the engine notes file (now docs/engine.md)'),
    (r'[\u00a7]', 'a numbered section of an outside document'),
    (
        r'\b(mhsa_two_strea[m]|reported_result[s]|mm[n]|mpane[t])\.md\b',
        'a specification file',
    ),
    (
        r'(?<![\w/(.:\'-])(?<!: )architectur[e]\.md\b',
        "the outside architecture sketch (the project's own page is docs/architecture.md)",
    ),
    (
        r'(?<![\w/(.:\'-])(?<!: )protocol[s]\.md\b',
        'the outside protocol notes (now docs/protocols.md)',
    ),
    (r'(?i)\bthe spe[c](ification)?\b|\bspe[c]\'s\b', 'outside design documents'),
]


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(
            ['git', 'ls-files', '-z'],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        files = [ROOT / f for f in out.split('\0') if f]
    except (OSError, subprocess.CalledProcessError):  # a source tree without git: walk it
        files = [p for p in ROOT.rglob('*') if not SKIP_DIRS & set(p.relative_to(ROOT).parts)]
    return [
        f
        for f in files
        if f.is_file() and not f.is_symlink() and f.suffix in TEXT_SUFFIXES and f.name != 'LICENSE'
    ]


def outside_references(text: str) -> list[tuple[int, str]]:
    """(line number, what) of every reference to a document outside the repository."""
    return [
        (number, what)
        for number, line in enumerate(text.splitlines(), start=1)
        for pattern, what in FORBIDDEN
        if re.search(pattern, line)
    ]


def test_the_scan_catches_outside_references():
    samples = [
        '# MPANet loss weights (spec \u00a72f)',
        'see ../share' + 'd/spe' + 'cs/protocols.md',
        '(engine_note' + 's.md, section 5)',
        'The full review is specs' + '/mm' + 'n.md',
        'as the spe' + 'c says',
        'x = 1  # the layout of protocol' + 's.md',
        'as sketched in architectur' + 'e.md',
    ]
    assert [len(outside_references(line)) > 0 for line in samples] == [True] * len(samples)
    clean = (
        'Semantics: [protocols](protocols.md), docs/protocols.md, RunSpec, spec = json.dumps(run)'
    )
    assert outside_references(clean) == []
    layers = '[layers](architecture.md), docs/architecture.md, - Architecture: architecture.md'
    assert outside_references(layers) == []


def test_no_file_refers_to_a_document_outside_the_repository():
    problems = []
    for path in tracked_files():
        try:
            text = path.read_text(encoding='utf-8')
        except UnicodeDecodeError:
            continue
        lines = text.splitlines()
        problems += [
            f'{path.relative_to(ROOT)}:{n}: {what}: {lines[n - 1].strip()[:120]}'
            for n, what in outside_references(text)
        ]
    assert not problems, (
        'write the fact itself here, or point into docs/ (cite the official repository '
        'and commit, or the paper):\n' + '\n'.join(problems)
    )


LINK = re.compile(r'\[[^\]]*\]\(([^)\s]+)\)')


@pytest.mark.parametrize(
    'path',
    [p for p in tracked_files() if p.suffix == '.md'],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_markdown_links_inside_the_repository_resolve(path):
    broken = []
    for target in LINK.findall(path.read_text(encoding='utf-8')):
        if re.match(r'[a-z]+:', target) or target.startswith('#'):
            continue
        file = target.split('#', 1)[0]
        if file and not (path.parent / file).exists():
            broken.append(target)
    assert not broken, f'{path.relative_to(ROOT)} links to missing files: {broken}'


def test_documentation_pages_exist_and_are_in_the_site_navigation():
    """Every page the site holds (docs/repository_pages.py: docs/*.md, README.md, the method
    READMEs, results/README.md, at their repository paths) is in mkdocs.yml's navigation."""
    nav = (ROOT / 'mkdocs.yml').read_text()
    pages = sorted(p.name for p in (ROOT / 'docs').glob('*.md'))
    assert {
        'index.md',
        'protocols.md',
        'engine.md',
        'leaderboard.md',
        'cluster.md',
        'methods.md',
        'data.md',
        'adding-a-method.md',
    } <= set(pages)
    site = [f'docs/{name}' for name in pages] + [
        p.relative_to(ROOT).as_posix()
        for p in [ROOT / 'README.md', ROOT / 'results' / 'README.md']
        + sorted((ROOT / 'methods').glob('*/README.md'))
    ]
    assert [p for p in site if f': {p}\n' not in nav] == []
