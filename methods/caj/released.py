"""The CAJ checkpoint its authors released, and how it maps onto a harness CAJ config's model.

mangye16/Cross-Modal-Re-ID-baseline links one trained CAJ model in ``ICCV21_CAJ/README.md`` (commit
e817a26, line 11): the SYSU-MM01 network, on Google Drive, reported there as ~69.88 Rank-1 /
~66.89 mAP / ~53.61 mINP. No md5 is published, so the harness records the md5 of the file it
scores. No RegDB model is linked ("-----" in line 10). ``train_ext.py`` saves only the epoch with
the best test-set Rank-1 (``*_best.t``, lines 445-455), so the linked file is presumably that one;
the README does not say, so the record is not marked optimistic.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from harness.official import ReleasedCheckpoint
from methods.caj.convert import convert_state_dict, load_official

README = (
    'https://github.com/mangye16/Cross-Modal-Re-ID-baseline/blob/'
    'e817a2672c1e14e8802617acb980a79520ef9545/ICCV21_CAJ/README.md'
)
DRIVE_ID = '1vIKkB61frqA-zG0RiL282heqthvwkKdO'  # ICCV21_CAJ/README.md line 11

RELEASED = (
    ReleasedCheckpoint(
        method='caj',
        config='caj_sysu',
        dataset='sysu',
        filename='caj_sysu_released.t',
        url=f'https://drive.google.com/file/d/{DRIVE_ID}/view?usp=sharing',
        listed_in=f'{README}#L11',
        onto_model='methods.caj.released:onto_model',
        gdrive_id=DRIVE_ID,
        md5=None,
        note='README line 11: ~69.88 R1 / ~66.89 mAP / ~53.61 mINP on SYSU-MM01; no md5 '
        'published; no RegDB model released',
    ),
)


def onto_model(
    src: str | Path, target: dict[str, Tensor], trusted: bool = False
) -> dict[str, Tensor]:
    """The official ``embed_net`` checkpoint ``src`` mapped strictly onto ``target``'s keys."""
    return convert_state_dict(load_official(src, trusted=trusted), target)[0]
