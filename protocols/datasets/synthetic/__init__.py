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

from . import directory, full, llcm, regdb, sysu
from .directory import MARKER, VERSION
from .llcm import DEFAULT_LOW_LIGHT, check_low_light
from .parallel import default_workers
from .render import check_gap

log = logging.getLogger(__name__)

DEFAULT_IDS = {'sysu': 250, 'regdb': 120, 'llcm': 150}
DEFAULT_GAP = 0.2
# demo: small and learnable (the demo leaderboard, the tests); full: the real-size stand-ins.
SIZES = ('demo', 'full')
_WRITERS = {'sysu': sysu.write, 'regdb': regdb.write, 'llcm': llcm.write}
_MIN_IDS = {'sysu': sysu.MIN_IDS, 'regdb': regdb.MIN_IDS, 'llcm': llcm.MIN_IDS}

__all__ = [
    'DEFAULT_GAP',
    'DEFAULT_IDS',
    'DEFAULT_LOW_LIGHT',
    'MARKER',
    'SIZES',
    'VERSION',
    'generate',
]


def generate(
    dataset: str,
    out: str | Path,
    ids: int | None = None,
    seed: int = 0,
    *,
    gap: float | None = None,
    low_light: float | None = None,
    workers: int | None = None,
    size: str = 'demo',
    scale: float = 1.0,
) -> Path:
    """Write a synthetic ``dataset`` ('sysu' | 'regdb' | 'llcm') under ``out`` and return that root.

    ``size='demo'`` (the default) writes the small, learnable dataset of the demo: ``ids`` is its
    number of identity numbers (default ``DEFAULT_IDS[dataset]``). ``size='full'`` writes the
    real-size stand-in (:mod:`.full`; SYSU-MM01 and RegDB, whose release counts are known): the
    release's identities, image counts, splits and comparable image sizes; ``scale`` < 1 keeps that
    fraction of its identities (each with its real image counts), for quick tests. Same arguments
    give the same bytes, whatever ``workers``. Returns at once if ``out`` already holds this exact
    dataset (its ``.synthetic.json`` marker matches); replaces a synthetic dataset of the same kind
    made with other arguments; refuses any other non-empty directory. ``gap`` (default
    ``DEFAULT_GAP``) is the modality-gap knob in [0, 1] (see :mod:`.render`); ``low_light`` (LLCM
    only, default ``DEFAULT_LOW_LIGHT``) the low-light knob in [0, 1] (see :mod:`.llcm`).
    ``workers`` processes render in parallel (default: one per CPU).
    """
    if dataset not in _WRITERS:
        raise ValueError(f'dataset must be one of {sorted(_WRITERS)}, got {dataset!r}')
    if size not in SIZES:
        raise ValueError(f'size must be one of {SIZES}, got {size!r}')
    if size == 'full' and dataset not in full.WRITERS:
        raise ValueError(
            f'size="full" is for {sorted(full.WRITERS)}: the {dataset!r} release publishes no '
            'image counts to stand in for; use the demo size'
        )
    if size == 'full' and ids is not None:
        raise ValueError(
            "ids applies to the demo size; a full-size stand-in has the release's identities "
            '(pass scale < 1 for fewer)'
        )
    if size == 'demo' and scale != 1:
        raise ValueError('scale applies to size="full"; the demo size takes ids instead')
    if ids is None and size == 'demo':
        ids = DEFAULT_IDS[dataset]
    if size == 'demo' and (
        isinstance(ids, bool) or not isinstance(ids, int) or ids < _MIN_IDS[dataset]
    ):
        raise ValueError(f'ids must be an int >= {_MIN_IDS[dataset]} for {dataset!r}, got {ids!r}')
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f'seed must be a non-negative int, got {seed!r}')
    gap = check_gap(DEFAULT_GAP if gap is None else gap)
    n_workers = default_workers() if workers is None else max(1, int(workers))
    knobs = {}
    if dataset == 'llcm':
        knobs['low_light'] = check_low_light(DEFAULT_LOW_LIGHT if low_light is None else low_light)
    elif low_light is not None:
        raise ValueError(f'low_light is a knob of the synthetic LLCM, not of {dataset!r}')
    if size == 'demo':
        params = {'kind': dataset, 'ids': ids, 'seed': seed, 'gap': gap, 'version': VERSION}
        params.update(knobs)
    else:
        scale = full.check_scale(scale)
        # No 'ids' key: a demo request never matches a full marker, nor the reverse ('size').
        params = {
            'kind': dataset,
            'size': size,
            'scale': scale,
            'seed': seed,
            'gap': gap,
            'version': VERSION,
        }

    def write(root: Path) -> dict:
        start = time.perf_counter()
        if size == 'demo':
            stats = _WRITERS[dataset](root, ids, seed, n_workers, gap, **knobs)
        else:
            stats = full.WRITERS[dataset](root, seed, n_workers, gap, scale)
        # Timing is logged, not stored: the marker must be byte-identical for identical arguments.
        log.info(
            'synthetic %s (%s): written in %.1f s with %d worker(s)',
            dataset,
            size,
            time.perf_counter() - start,
            n_workers,
        )
        return stats

    return directory.build(Path(out), dataset, params, write)
