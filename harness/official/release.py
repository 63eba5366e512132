"""What a method declares about its authors' released checkpoints (:class:`ReleasedCheckpoint`),
the errors of official-checkpoint requests, and how a declaration is found for a run."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.plugins import MethodSpec

# Where downloaded releases are kept inside a leaderboard's --out folder: OUT/official/<method>/.
DOWNLOADS = 'official'
CONVERTED = 'official_converted.pth'
TRUST_REASON = (
    "the authors' checkpoints are pickles: their training scripts save numpy objects "
    "beside the weights (AGW's train.py: {'net', 'cmc', 'mAP', 'mINP', 'epoch'}), "
    'which torch reads only with weights_only=False, and unpickling a file runs the '
    "code in it. Pass --trusted if you trust the file's source (its md5 is checked "
    'when known and recorded)'
)


class OfficialError(HarnessError, ValueError):
    """An official-checkpoint request is malformed, untrusted, or its file is wrong."""


class OfficialFetchError(HarnessError, FileNotFoundError):
    """The released checkpoint is not on disk and could not be fetched."""


@dataclass(frozen=True)
class ReleasedCheckpoint:
    """One checkpoint a method's authors released.

    ``onto_model`` is ``'package.module:function'``, called as ``f(src, target, trusted)`` with
    the file and the harness model's state dict; it returns the converted state dict (keys and
    shapes of ``target``) or raises naming what does not fit.
    """

    method: str  # harness method name, e.g. 'agw'
    config: str  # stem of the harness config whose network it fits: 'agw_sysu'
    dataset: str  # 'sysu' | 'regdb'
    filename: str  # name the file is kept under in OUT/official/<method>/
    url: str  # where a person downloads it
    listed_in: str  # the page that links it (repository URL at a commit)
    onto_model: str
    split: int | None = None  # RegDB split it was trained on
    gdrive_id: str | None = None  # Google Drive file id: fetched with gdown; None: by hand
    md5: str | None = None  # expected md5; None when the authors publish none
    note: str = ''  # what a person should know (a share code, what is unknown)

    @property
    def target(self) -> str:
        """``sysu`` or ``regdb-split<k>``: what ``--official-checkpoint`` calls its dataset."""
        return dataset_target(self.dataset, self.split)

    def converter(self) -> Callable[..., dict]:
        module, _, attr = self.onto_model.partition(':')
        return getattr(importlib.import_module(module), attr)

    def origin(self) -> dict[str, Any]:
        how = 'google-drive (gdown)' if self.gdrive_id else 'by hand'
        return dict(
            kind='released',
            url=self.url,
            gdrive_id=self.gdrive_id,
            listed_in=self.listed_in,
            fetch=how,
            note=self.note,
        )


def dataset_target(dataset: str, split: int | None) -> str:
    return dataset if split is None else f'{dataset}-split{split}'


def released_of(spec: MethodSpec) -> tuple[ReleasedCheckpoint, ...]:
    """The checkpoints a method plugin declares (``MethodSpec.released``), or ``()``."""
    ref = getattr(spec, 'released', None)
    if not ref:
        return ()
    module, _, attr = ref.partition(':')
    found = tuple(getattr(importlib.import_module(module), attr or 'RELEASED'))
    bad = [r for r in found if not isinstance(r, ReleasedCheckpoint) or r.method != spec.name]
    if bad:
        raise TypeError(
            f'{ref}: every entry must be a harness.official.ReleasedCheckpoint with '
            f'method={spec.name!r}, got {bad[0]!r}'
        )
    return found


class PlannedRun(Protocol):
    """What :func:`find_released` reads of a planned run (a leaderboard ``RunSpec``)."""

    @property
    def config_stem(self) -> str: ...

    dataset: str
    split: int | None


def find_released(
    spec: MethodSpec | None,
    run: PlannedRun | None = None,
    *,
    config: str | None = None,
    dataset: str | None = None,
    split: int | None = None,
) -> ReleasedCheckpoint | None:
    """The released checkpoint of ``spec`` that fits a run's config, dataset and split."""
    if spec is None:
        return None
    if run is not None:
        config, dataset, split = run.config_stem, run.dataset, run.split
    for rel in released_of(spec):
        if rel.config == config and rel.dataset == dataset and rel.split == split:
            return rel
    return None


def unreleased_note(methods: Mapping[str, MethodSpec], names: Iterable[str]) -> list[str]:
    """One line per selected method without a declared released checkpoint."""
    return [
        f'{n}: no released checkpoint is declared; '
        f'--official-checkpoint {n}:DATASET=PATH scores a file you have'
        for n in names
        if n in methods and not released_of(methods[n])
    ]
