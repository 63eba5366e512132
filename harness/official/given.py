"""``--official-checkpoint METHOD:DATASET=PATH``: a released checkpoint already on disk."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.official.release import OfficialError, dataset_target

_GIVEN = re.compile(r'^(?P<method>[A-Za-z0-9_.-]+):(?P<target>[a-z0-9-]+)=(?P<path>.+)$')
_TARGET = re.compile(r'^(?P<dataset>sysu|regdb|llcm)(?:-split(?P<split>\d+))?$')
GIVEN_SYNTAX = 'METHOD:DATASET=PATH with DATASET sysu, llcm or regdb-split<k> (e.g. agw:sysu=agw.t)'


@dataclass(frozen=True)
class GivenCheckpoint:
    """A released checkpoint already on disk, from ``--official-checkpoint``."""

    method: str
    dataset: str
    split: int | None
    path: str

    @property
    def target(self) -> str:
        return dataset_target(self.dataset, self.split)


def parse_given(text: str) -> GivenCheckpoint:
    """``'agw:sysu=/data/agw.t'`` -> :class:`GivenCheckpoint`; a clear error for anything else."""
    match = _GIVEN.match(text.strip())
    if not match:
        raise OfficialError(f'--official-checkpoint {text!r}: expected {GIVEN_SYNTAX}')
    target = _TARGET.match(match['target'])
    if not target:
        raise OfficialError(
            f'--official-checkpoint {text!r}: unknown dataset {match["target"]!r}; '
            f'expected sysu, llcm or regdb-split<k> (k = 1..10)'
        )
    dataset, split = target['dataset'], target['split']
    if dataset != 'regdb' and split is not None:
        raise OfficialError(
            f'--official-checkpoint {text!r}: {dataset} has no splits; name it '
            f'{match["method"]}:{dataset}=PATH'
        )
    if dataset == 'regdb' and split is None:
        raise OfficialError(
            f'--official-checkpoint {text!r}: a RegDB model is trained on one '
            f'split; name it, e.g. {match["method"]}:regdb-split1=PATH'
        )
    if split is not None and not 1 <= int(split) <= 10:
        raise OfficialError(f'--official-checkpoint {text!r}: RegDB splits are 1..10')
    path = Path(match['path']).expanduser()
    if not path.is_file():
        raise OfficialError(f'--official-checkpoint {text!r}: {path} is not a file; check the path')
    return GivenCheckpoint(
        match['method'], dataset, None if split is None else int(split), str(path.resolve())
    )
