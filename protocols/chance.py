"""Chance level of a protocol: how many identities a query's gallery holds.

A model that ranks the gallery at random finds the right identity first with probability
1 / (gallery identities); tables print it beside scores so a reader can tell learning from luck.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from protocols.datasets import load_dataset
from protocols.datasets.base import Modality
from protocols.datasets.sysu import GALLERY_CAMS
from protocols.evaluation import check_protocol
from protocols.trials import LLCM_CONVENTIONAL, SYSU_SHOTS, regdb_query_gallery, sysu_setting


def gallery_identities(
    dataset: str, root: str | Path, protocol: Mapping[str, Any] | None = None
) -> dict[str, int]:
    """Identities in the gallery of each setting of ``protocol`` (same keys as the results).

    SYSU-MM01: test identities with an image in the mode's gallery cameras (every trial draws from
    each of them); RegDB: test identities of the split in the gallery modality; LLCM: test
    identities with a visible image (the ranked side of ir2vis and vis2ir), or an infrared one for
    vis2ir-conventional.
    """
    p = check_protocol(dataset, protocol)
    ds = load_dataset(dataset, root)
    out: dict[str, int] = {}
    if dataset == 'sysu':
        candidates = ds.gallery_candidates()
        for mode in p['modes']:
            n = len({r.pid for r in candidates if r.cam in GALLERY_CAMS[mode]})
            for shots in p['shots']:
                if shots in SYSU_SHOTS:
                    out[sysu_setting(mode, shots)] = n
    elif dataset == 'llcm':
        for direction in p['directions']:
            ranked = Modality.INFRARED if direction == LLCM_CONVENTIONAL else Modality.VISIBLE
            out[direction] = len({r.pid for r in ds.test_images(ranked)})
    else:
        for direction in p['directions']:
            _, gallery = regdb_query_gallery(ds, p['split'], direction)
            out[direction] = len({r.pid for r in gallery})
    return out
