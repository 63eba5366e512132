"""Paper tables (Markdown, LaTeX, CSV), plots and the page from run records (``build_tables``)."""

from harness.tables.export import build_tables

__all__ = ['build_tables']
