"""Micro-benchmarks run by ``vireid bench NAME`` (timings, not tests).

Each entry maps a name to a module exposing ``run(**kwargs) -> dict`` (full size by default) and
``QUICK`` (kwargs for ``--quick``), or ``main(args) -> int`` to take over the command entirely.
Adding a benchmark is one entry here.
"""

from __future__ import annotations

import importlib
from types import ModuleType

BENCHMARKS: dict[str, str] = {
    'data': 'harness.bench.data',
    'extract': 'harness.bench.extract',
    'metrics': 'harness.bench.metrics',
    'train': 'harness.bench.train',
}


def load_benchmark(name: str) -> ModuleType:
    """Import the module of benchmark ``name``; KeyError listing the known names if unknown."""
    try:
        module_path = BENCHMARKS[name]
    except KeyError:
        raise KeyError(
            f'unknown benchmark {name!r}; known: {", ".join(sorted(BENCHMARKS))}'
        ) from None
    return importlib.import_module(module_path)
