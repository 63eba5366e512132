"""MMN's released checkpoints: none. ZYK100/MMN's README (commit 01d70d5) links no trained model.

``onto_model`` still maps an official ``embed_net`` file onto a harness MMN config's model, so a
checkpoint you have (from the authors by mail, or trained with their code) is re-scored with
``vireid leaderboard --official-checkpoint mmn:sysu=PATH --trusted``.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from harness.official import ReleasedCheckpoint
from methods.mmn.convert import convert_state_dict, load_official

RELEASED: tuple[ReleasedCheckpoint, ...] = ()


def onto_model(
    src: str | Path, target: dict[str, Tensor], trusted: bool = False
) -> dict[str, Tensor]:
    """The official ``embed_net`` checkpoint ``src`` mapped strictly onto ``target``'s keys."""
    return convert_state_dict(load_official(str(src), trusted=trusted), target)[0]
