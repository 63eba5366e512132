"""Independent random streams keyed by what they are for, so output never depends on loop order."""

from __future__ import annotations

import numpy as np

# Stream keys. Changing any value changes every generated dataset: bump the generator version too.
SYSU, REGDB, LLCM = 1, 2, 3
PERSON, PRESENCE, COUNT, IMAGE, PERM, SPLIT, META = range(7)
# Real-size stand-ins (.full): crop size of a (camera, id), its base renders, each image's change.
SIZE, BASE, VARIANT = range(7, 10)


def stream(seed: int, *keys: int) -> np.random.Generator:
    """A generator for ``(seed, *keys)``; distinct key tuples give statistically independent
    streams."""
    return np.random.default_rng([seed, *keys])
