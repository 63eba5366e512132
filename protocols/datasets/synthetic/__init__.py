"""Synthetic SYSU-MM01, RegDB and LLCM in the exact on-disk layouts of the real releases.

Readers written for the real datasets read these unchanged. Identities are procedural pedestrians
(see :mod:`.render`): garment tones, shapes and lengths, coarse texture layout, accessories, build
and hair. ``gap`` sets how far the infrared tones are from the visible colours' grey level: 0 makes
infrared the grey image of the visible one, 1 draws infrared tones independently of colour. LLCM
has a second knob, ``low_light`` (see :mod:`.llcm`): how dark, noisy and washed-out its colour
images are.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from . import directory, llcm, regdb, sysu
from .directory import MARKER, VERSION
from .llcm import DEFAULT_LOW_LIGHT, check_low_light
from .parallel import default_workers
from .render import check_gap

log = logging.getLogger(__name__)

DEFAULT_IDS = {'sysu': 250, 'regdb': 120, 'llcm': 150}
DEFAULT_GAP = 0.2
_WRITERS = {'sysu': sysu.write, 'regdb': regdb.write, 'llcm': llcm.write}
_MIN_IDS = {'sysu': sysu.MIN_IDS, 'regdb': regdb.MIN_IDS, 'llcm': llcm.MIN_IDS}

__all__ = ['DEFAULT_GAP', 'DEFAULT_IDS', 'DEFAULT_LOW_LIGHT', 'MARKER', 'VERSION', 'generate']


def generate(
    dataset: str,
    out: str | Path,
    ids: int | None = None,
    seed: int = 0,
    *,
    gap: float | None = None,
    low_light: float | None = None,
    workers: int | None = None,
) -> Path:
    """Write a synthetic ``dataset`` ('sysu' | 'regdb' | 'llcm') under ``out`` and return that root.

    ``ids`` is the number of identity numbers (default ``DEFAULT_IDS[dataset]``); same arguments
    give the same bytes. Returns at once if ``out`` already holds this exact dataset (its
    ``.synthetic.json`` marker matches); replaces a synthetic dataset of the same kind made with
    other arguments; refuses any other non-empty directory. ``gap`` (default ``DEFAULT_GAP``) is the
    modality-gap knob in [0, 1] (see :mod:`.render`); ``low_light`` (LLCM only, default
    ``DEFAULT_LOW_LIGHT``) the low-light knob in [0, 1] (see :mod:`.llcm`). ``workers`` processes
    render in parallel (default: up to 4 CPUs).
    """
    if dataset not in _WRITERS:
        raise ValueError(f'dataset must be one of {sorted(_WRITERS)}, got {dataset!r}')
    if ids is None:
        ids = DEFAULT_IDS[dataset]
    if isinstance(ids, bool) or not isinstance(ids, int) or ids < _MIN_IDS[dataset]:
        raise ValueError(f'ids must be an int >= {_MIN_IDS[dataset]} for {dataset!r}, got {ids!r}')
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f'seed must be a non-negative int, got {seed!r}')
    gap = check_gap(DEFAULT_GAP if gap is None else gap)
    n_workers = default_workers() if workers is None else max(1, int(workers))
    params = {'kind': dataset, 'ids': ids, 'seed': seed, 'gap': gap, 'version': VERSION}
    knobs = {}
    if dataset == 'llcm':
        knobs['low_light'] = check_low_light(DEFAULT_LOW_LIGHT if low_light is None else low_light)
        params.update(knobs)
    elif low_light is not None:
        raise ValueError(f'low_light is a knob of the synthetic LLCM, not of {dataset!r}')

    def write(root: Path) -> dict:
        start = time.perf_counter()
        stats = _WRITERS[dataset](root, ids, seed, n_workers, gap, **knobs)
        # Timing is logged, not stored: the marker must be byte-identical for identical arguments.
        log.info(
            'synthetic %s: %d ids written in %.1f s with %d worker(s)',
            dataset,
            ids,
            time.perf_counter() - start,
            n_workers,
        )
        return stats

    return directory.build(Path(out), dataset, params, write)
