"""The notes of a re-scored ("official") table row: how it was evaluated and which weights."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def protocol_tag(record: Mapping[str, Any], splits: int | None = None) -> str:
    """How a record was evaluated, in the words of results/reported.csv's ``eval_protocol``:
    ``sysu-official-randperm`` (rand_perm_cam.mat galleries), ``sysu-agw-seed0-9`` (the seeded
    galleries of AGW's code), ``regdb-10-splits`` / ``regdb-<k>-of-10-splits``,
    ``llcm-deen-seed0-9`` (DEEN test.py's draws)."""
    from protocols.evaluation import SYSU_PROTOCOL

    if record.get('dataset') == 'llcm':
        return 'llcm-deen-seed0-9'

    if record.get('dataset') == 'sysu':
        sampler = (record.get('protocol') or {}).get('sampler', SYSU_PROTOCOL['sampler'])
        return 'sysu-official-randperm' if sampler == 'official' else 'sysu-agw-seed0-9'
    k = splits or 1
    return 'regdb-10-splits' if k == 10 else f'regdb-{k}-of-10-splits'


def official_note(records: Iterable[Mapping[str, Any]], regdb_splits: int) -> str:
    """The notes of a re-scored row: its protocol and its weights (md5, file)."""
    records = list(records)
    tags = dict.fromkeys(protocol_tag(r, regdb_splits) for r in records)
    weights = []
    for rec in records:
        info = (rec.get('provenance') or {}).get('official') or {}
        if info.get('md5'):
            weights.append(f'{Path(info.get("file", "?")).name} md5 {info["md5"][:8]}')
    text = f'protocol: {", ".join(tags)} (this harness)'
    if weights:
        shown = list(dict.fromkeys(weights))
        more = f' +{len(shown) - 2}' if len(shown) > 2 else ''
        text += '; weights: ' + ', '.join(shown[:2]) + more
    return text
