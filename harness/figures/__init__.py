"""Paper figures of a run: ranked-retrieval grids and feature-distribution plots (``vireid figures``)."""
from harness.figures.draw import draw_figures
from harness.figures.manifest import figures_up_to_date, read_manifest

__all__ = ['draw_figures', 'figures_up_to_date', 'read_manifest']
