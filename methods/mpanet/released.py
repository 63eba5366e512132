"""The MPANet checkpoint its authors released, and how it maps onto a harness MPANet config's model.

DoubtedSteam/MPANet's README (commit f57fd5c, lines 48-52) links "the checkpoint" on Baidu Pan,
https://pan.baidu.com/s/1TnjtfMFPnm5TEprgAhqz9A (share code ``rfti``). **That link is reported
dead**: DoubtedSteam/MPANet issue #7 (2022-02-18, still open, unanswered) says "the Baidu Pan link
of checkpoints has failed"; the README's last change (2022-11-15) kept the same link. We could not
check it ourselves (no network here), so the entry stays, for anyone who has the file: gdown cannot
fetch Baidu Pan anyway, so pass it with ``--official-checkpoint mpanet:sysu=PATH`` (or put it where
the error message says). The README does not say which dataset it was trained on and publishes no
md5; it is declared here for SYSU-MM01 (the paper's main table), and the strict conversion refuses
it (classifier of 206 RegDB identities instead of 395) if it is RegDB's.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from harness.official import ReleasedCheckpoint
from methods.mpanet.convert import load_official, map_state

README = (
    'https://github.com/DoubtedSteam/MPANet/blob/f57fd5c707a32e6d7699abcee0432c259d24f90d/README.md'
)

RELEASED = (
    ReleasedCheckpoint(
        method='mpanet',
        config='mpanet_sysu',
        dataset='sysu',
        filename='mpanet_released.pth',
        url='https://pan.baidu.com/s/1TnjtfMFPnm5TEprgAhqz9A',
        listed_in=README,
        onto_model='methods.mpanet.released:onto_model',
        gdrive_id=None,
        md5=None,
        note=(
            'Baidu Pan, share code rfti; reported dead (DoubtedSteam/MPANet issue #7); the README '
            'names neither the dataset nor an md5'
        ),
    ),
)


def onto_model(
    src: str | Path, target: dict[str, Tensor], trusted: bool = False
) -> dict[str, Tensor]:
    """The official ``Baseline`` state dict ``src`` mapped strictly onto ``target``'s keys."""
    return map_state(
        load_official(str(src), trusted=trusted), {k: v.shape for k, v in target.items()}
    )
