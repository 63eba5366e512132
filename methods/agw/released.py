"""The AGW checkpoint its authors released, and how it maps onto a harness AGW config's model.

mangye16/Cross-Modal-Re-ID-baseline links one trained model in its README (commit e817a26): the
SYSU-MM01 ``--method agw`` network, on Google Drive, reported there as ~47.50 Rank-1 / ~47.65 mAP
/ ~35.30 mINP (all-search, single-shot). No md5 is published, so the harness records the md5 of
the file it scores. No RegDB model is linked ("-----" in the README's table). Its ``train.py``
keeps the epoch with the best test Rank-1 as ``*_best.t``; the README does not say which file the
link holds, so the record is not marked optimistic.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from harness.official import ReleasedCheckpoint
from methods.agw.convert import convert_state_dict, load_official

README = (
    'https://github.com/mangye16/Cross-Modal-Re-ID-baseline/blob/'
    'e817a2672c1e14e8802617acb980a79520ef9545/README.md'
)
DRIVE_ID = '181K9PQGnej0K5xNX9DRBDPAf3K9JosYk'

RELEASED = (
    ReleasedCheckpoint(
        method='agw',
        config='agw_sysu',
        dataset='sysu',
        filename='agw_sysu_released.t',
        url=f'https://drive.google.com/open?id={DRIVE_ID}',
        listed_in=README,
        onto_model='methods.agw.released:onto_model',
        gdrive_id=DRIVE_ID,
        md5=None,
        note='README: ~47.50 R1 / ~47.65 mAP / ~35.30 mINP on SYSU-MM01 all-search; no md5 '
        'published',
    ),
)


def onto_model(
    src: str | Path, target: dict[str, Tensor], trusted: bool = False
) -> dict[str, Tensor]:
    """The official ``embed_net`` checkpoint ``src`` mapped strictly onto ``target``'s keys."""
    return convert_state_dict(load_official(src, trusted=trusted), target)[0]
