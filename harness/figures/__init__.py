"""Paper figures of a run (``vireid figures``): ranked-retrieval grids, feature distributions."""

from harness.figures.draw import draw_figures
from harness.figures.manifest import figures_up_to_date, read_manifest

__all__ = ['draw_figures', 'figures_up_to_date', 'read_manifest']
