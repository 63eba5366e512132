"""``figures/index.json``: which figures a run has and what each shows (for pages that link them).

Layout (file names relative to the figures folder)::

    {"schema": 1, "created": ISO time, "run_dir": ..., "title": ..., "method": ..., "config": ...,
     "dataset": ..., "split": ..., "checkpoint": ..., "seed": ..., "run_seed": ..., "distance": ...,
     "features": {"trained": where from, "untrained": where from},
     "distances": {"trained": {"overlap": ..., "same_mean": ..., "different_mean": ...}, ...},
     "figures": [{"file": "retrieval_all-single_trial0_random.png",
                  "kind": "retrieval" | "embedding" | "distances",
                  "caption": "...", "csv": "... (retrieval only)", ...}, ...]}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.atomic import write_json_atomic
from harness.records import RECORD_NAME

FIGURES_DIR = 'figures'
MANIFEST = 'index.json'
SCHEMA = 1


def write_manifest(out_dir: str | Path, manifest: dict[str, Any]) -> Path:
    return write_json_atomic(Path(out_dir) / MANIFEST, {'schema': SCHEMA, **manifest})


def read_manifest(run_dir: str | Path) -> dict[str, Any] | None:
    """The manifest of ``run_dir``'s figures (default folder), or None when it has none (or a
    damaged one)."""
    path = Path(run_dir) / FIGURES_DIR / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get('schema') == SCHEMA else None


def figures_up_to_date(run_dir: str | Path) -> bool:
    """True when the run's figures were drawn after its record was last written."""
    run_dir = Path(run_dir)
    manifest, record = run_dir / FIGURES_DIR / MANIFEST, run_dir / RECORD_NAME
    return (
        manifest.is_file()
        and record.is_file()
        and manifest.stat().st_mtime >= record.stat().st_mtime
    )
