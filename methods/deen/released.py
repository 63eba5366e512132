"""DEEN's released checkpoints: none. ZYK100/LLCM's README and DEEN/README.md (commit 886e27c) link
the LLCM dataset agreement and report a results table, but no trained model ("Train a model by:
python train.py ..." and "Test a model ... --resume 'model_path'", DEEN/README.md lines 22-48).

``onto_model`` still maps an official ``embed_net`` file onto a harness DEEN config's model, so a
checkpoint you have (from the authors, or trained with their code) is re-scored with
``vireid leaderboard --official-checkpoint deen:sysu=PATH --trusted``.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from harness.official import ReleasedCheckpoint
from methods.deen.convert import convert_state_dict, load_official

RELEASED: tuple[ReleasedCheckpoint, ...] = ()


def onto_model(
    src: str | Path, target: dict[str, Tensor], trusted: bool = False
) -> dict[str, Tensor]:
    """The official ``embed_net`` checkpoint ``src`` mapped strictly onto ``target``'s keys."""
    return convert_state_dict(load_official(src, trusted=trusted), target)[0]
