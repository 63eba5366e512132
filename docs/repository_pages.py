"""mkdocs hook (``hooks:`` in mkdocs.yml): the site holds the repository's Markdown at its paths.

The method READMEs and ``results/README.md`` are read on GitHub and in a clone beside the code
they describe, and are pages of the site too, from the same file. mkdocs reads pages from one
folder, ``docs_dir``, and refuses the repository root as that folder (it holds mkdocs.yml). This
hook swaps the pages mkdocs found under ``docs/`` for the files of :data:`PAGES`, each under its
path in the repository: ``README.md`` is the home page, ``docs/leaderboard.md`` is
``docs/leaderboard/``, ``methods/agw/README.md`` is ``methods/agw/``. A relative link therefore
points to the same text on disk and in the site, and ``mkdocs build --strict`` fails on a link
that would be dead in either (tests/test_self_contained.py checks them on disk as well).
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

# What the site shows, as globs relative to the repository root (the folder of mkdocs.yml).
PAGES = ('README.md', 'docs/*.md', 'methods/*/README.md', 'results/README.md')


def repository_pages(root: Path) -> list[str]:
    """The repository paths of the site's pages, sorted."""
    return sorted({p.relative_to(root).as_posix() for g in PAGES for p in root.glob(g)})


def on_files(files: Files, config: MkDocsConfig) -> Files:
    root = Path(config.config_file_path).resolve().parent
    docs = Path(config.docs_dir).resolve()
    # The theme's own files stay; everything mkdocs took from docs/ comes back under its repo path.
    kept = [f for f in files if not (f.abs_src_path and Path(f.abs_src_path).is_relative_to(docs))]
    pages = [
        File.generated(config, path, abs_src_path=str(root / path))
        for path in repository_pages(root)
    ]
    return Files(kept + pages)
