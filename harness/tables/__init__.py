"""Paper tables (Markdown, LaTeX, CSV) and CMC plots from run records: see ``build_tables``."""

from harness.tables.export import build_tables

__all__ = ['build_tables']
