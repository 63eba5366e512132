"""The authors' released checkpoints, re-scored under the harness protocol ("official" rows).

A method declares the checkpoints its authors released (``MethodSpec.released``: a tuple of
:class:`ReleasedCheckpoint`): where the file is (a Google Drive id fetched with gdown, or a page to
download it from by hand), its md5 when known, which harness config its network fits, and how its
tensors map onto that config's model. ``vireid leaderboard --official`` plans one scored-only run
per declared checkpoint (``--official-checkpoint METHOD:DATASET=PATH`` for a file already on disk);
:func:`score_official` is that run: it fetches or takes the file, checks its md5, converts it onto
the config's model (strictly), scores it with the same protocol code as every other run and writes
a record with ``source='official'`` whose provenance names the file, its md5 and its origin.

Official training scripts pickle numpy objects beside the weights (AGW's ``train.py`` saves
``{'net', 'cmc', 'mAP', 'mINP', 'epoch'}``), so reading them needs ``weights_only=False``, which
runs the file's pickle code: the caller must pass ``trusted`` explicitly.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.leaderboard.plan import RunSpec
    from harness.plugins import MethodSpec

# Where downloaded releases are kept inside a leaderboard's --out folder: OUT/official/<method>/.
DOWNLOADS = 'official'
CONVERTED = 'official_converted.pth'
# gdown's (connect, read) timeouts in seconds: offline, the fetch fails at once, not minutes later.
FETCH_TIMEOUT = (10, 60)
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


# --- --official-checkpoint METHOD:DATASET=PATH ------------------------------------------------

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


# --- the plan: one scored-only run per released checkpoint ------------------------------------


def official_runs(
    runs: Iterable[RunSpec],
    methods: Mapping[str, MethodSpec],
    out: str | Path,
    declared: bool,
    given: Iterable[GivenCheckpoint] = (),
    trusted: bool = False,
) -> list[RunSpec]:
    """The official twins of ``runs`` (training runs of the plan).

    ``declared``: a twin for each run whose config a released checkpoint of its method fits.
    ``given``: a twin for each non-ablation run of that method, dataset and split, scoring the
    file given. Each is refused with a clear message when it matches no planned run; any twin
    needs ``trusted``.
    """
    from harness.leaderboard.plan import scored_twin

    runs = [r for r in runs if r.trains]
    given = list(given)
    for g in given:
        if g.method not in methods:
            raise OfficialError(
                f'--official-checkpoint {g.method}:{g.target}: no method '
                f'{g.method!r} is installed; found: {", ".join(sorted(methods))}'
            )
        if not any(_fits_given(r, g) for r in runs):
            raise OfficialError(
                f'--official-checkpoint {g.method}:{g.target}: no planned run of '
                f'{g.method} on {g.target} (see --methods/--datasets/--kinds/'
                f'--regdb-splits, and --dry-run for the plan)'
            )
    downloads = Path(out) / DOWNLOADS
    twins = []
    for run in runs:
        mine = next((g for g in given if _fits_given(run, g)), None)
        if mine is not None:
            twins.append(
                replace(
                    scored_twin(run, 'official', mine.path),
                    trusted=trusted,
                    downloads=str(downloads),
                )
            )
        elif declared and find_released(methods.get(run.method), run) is not None:
            twins.append(
                replace(scored_twin(run, 'official'), trusted=trusted, downloads=str(downloads))
            )
    if twins and not trusted:
        raise OfficialError(
            f'{len(twins)} official run(s) planned ({twins[0].key}, ...), but {TRUST_REASON}.'
        )
    return twins


def _fits_given(run: RunSpec, given: GivenCheckpoint) -> bool:
    return (
        run.method == given.method
        and run.dataset == given.dataset
        and run.split == given.split
        and run.kind != 'ablation'
    )


def find_released(
    spec: MethodSpec | None,
    run: RunSpec | None = None,
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


# --- fetching ---------------------------------------------------------------------------------


def md5_of(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, 'rb') as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _by_hand(rel: ReleasedCheckpoint, dest: Path) -> str:
    note = f' ({rel.note})' if rel.note else ''
    return (
        f'download it by hand from {rel.url}{note} and either put it at {dest} (then run the '
        f'same command again) or pass --official-checkpoint {rel.method}:{rel.target}=PATH'
    )


def gdown_download(file_id: str, output: str) -> str | None:
    """gdown's download of Drive file ``file_id`` to ``output`` (a seam the tests replace)."""
    import gdown

    return gdown.download(id=file_id, output=output, quiet=True, timeout=FETCH_TIMEOUT)


def fetch_released(rel: ReleasedCheckpoint, downloads: str | Path) -> Path:
    """The file of ``rel`` under ``downloads/<method>/``: kept from before, or fetched now with
    gdown (a Drive release). A by-hand release, or a failed fetch, raises
    :class:`OfficialFetchError` with the URL and where to put the file."""
    dest = Path(downloads) / rel.method / rel.filename
    if dest.is_file():
        return dest
    if not rel.gdrive_id:
        raise OfficialFetchError(
            f'the released {rel.method} {rel.target} checkpoint is not on '
            f'this machine and is not fetched automatically: ' + _by_hand(rel, dest)
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + '.part')
    try:
        got = gdown_download(rel.gdrive_id, str(part))
    except Exception as err:  # gdown raises requests', its own and OS errors alike
        cause = f'{type(err).__name__}: {" ".join(str(err).split())[:300]}'
        got = None
    else:
        cause = 'gdown returned no file'
    if not got or not part.is_file() or part.stat().st_size == 0:
        part.unlink(missing_ok=True)
        raise OfficialFetchError(
            f'could not fetch the released {rel.method} {rel.target} '
            f'checkpoint from Google Drive ({cause}); ' + _by_hand(rel, dest)
        )
    os.replace(part, dest)
    return dest


# --- the run ----------------------------------------------------------------------------------


def _target_state(cfg: Any) -> tuple[dict, int]:
    """The state dict of ``cfg``'s freshly built model (the converter's target), and its classes."""
    from mmengine.registry import DefaultScope

    from harness.data.datasets import train_set
    from harness.engine.run import without_pretrained
    from harness.registry import MODELS

    num_classes = train_set(cfg.protocol['dataset'], cfg.data_root, cfg.protocol).num_classes
    with DefaultScope.overwrite_default_scope('harness'):
        model = MODELS.build(without_pretrained(dict(cfg.model, num_classes=num_classes)))
    return model.state_dict(), num_classes


def score_official(
    config: str,
    work_dir: str,
    data_root: str | None = None,
    cfg_options: Mapping[str, Any] | None = None,
    source: str = 'official',
    checkpoint: str | None = None,
    trusted: bool = False,
    downloads: str | None = None,
    resume: bool = True,
    launcher: str = 'none',
    log_level: str = 'INFO',
    **_: Any,
) -> dict[str, Any]:
    """Score the authors' released checkpoint for ``config`` and write ``work_dir/record.json``.

    ``checkpoint``: the official file (``--official-checkpoint``); ``None``: the release the
    config's method declares for it, taken from ``downloads/<method>/`` or fetched there. The file
    is md5-checked when the release states an md5, converted onto the config's model (strictly:
    every used tensor, exact shapes), saved beside the record as a harness checkpoint and scored
    by :func:`harness.engine.run.score_run` with ``source='official'``.
    """
    from harness.checkpoints import describe_model, save_checkpoint
    from harness.engine.config import config_hash, load_config
    from harness.engine.run import score_run
    from harness.plugins import discover

    if source != 'official':
        raise ValueError(f'score_official scores official checkpoints, got source {source!r}')
    if not trusted:
        raise OfficialError(f'official checkpoint for {config}: {TRUST_REASON}.')
    cfg = load_config(config, cfg_options)
    if data_root is not None:
        cfg.data_root = str(data_root)
    method = cfg.get('entry', {}).get('method')
    dataset = cfg.protocol['dataset']
    split = cfg.protocol.get('split') if dataset == 'regdb' else None
    rel = find_released(
        discover().get(method), config=Path(config).stem, dataset=dataset, split=split
    )
    if checkpoint is None:
        if rel is None:
            target = dataset_target(dataset, split)
            raise OfficialError(
                f'{method} declares no released checkpoint for {Path(config).name} '
                f'({target}); pass the file with '
                f'--official-checkpoint {method}:{target}=PATH'
            )
        path = fetch_released(rel, downloads or Path(work_dir) / DOWNLOADS)
        origin = rel.origin()
    else:
        path = Path(checkpoint)
        origin = dict(kind='file given (--official-checkpoint)', path=str(path.resolve()))
        if rel is not None:
            origin.update(released_as=rel.url, listed_in=rel.listed_in)
    md5 = md5_of(path)
    if checkpoint is None and rel.md5 and md5 != rel.md5:
        raise OfficialError(
            f"{path}: md5 {md5} differs from the released file's {rel.md5}; the "
            f'download is incomplete or another file: delete it and run again, or '
            + _by_hand(rel, path)
        )
    state, num_classes = _target_state(cfg)
    converter, converter_ref = (
        (rel.converter(), rel.onto_model) if rel is not None else _default_converter(method)
    )
    converted = converter(str(path), state, trusted=True)
    work = Path(work_dir)
    meta = describe_model(
        method,
        num_classes,
        Path(config).name,
        config_hash(cfg),
        dataset=dataset,
        converted_from=path.name,
        official_md5=md5,
    )
    save_checkpoint({'state_dict': converted, 'meta': meta}, work / CONVERTED)
    official = dict(
        file=str(path),
        md5=md5,
        expected_md5=rel.md5 if rel else None,
        md5_matches_release=None if not (rel and rel.md5) else md5 == rel.md5,
        bytes=path.stat().st_size,
        origin=origin,
        converted=str(work / CONVERTED),
        converter=converter_ref,
    )
    return score_run(
        config,
        work_dir,
        data_root=data_root,
        cfg_options=cfg_options,
        source='official',
        checkpoint=str(work / CONVERTED),
        launcher=launcher,
        log_level=log_level,
        provenance=dict(official=official),
    )


def _default_converter(method: str) -> tuple[Callable[..., dict], str]:
    """A method without declared releases still converts a given file: its ``released`` module's
    ``onto_model`` when it has one."""
    from harness.plugins import get_method

    spec = get_method(method)
    ref = getattr(spec, 'released', None)
    if ref:
        name = ref.partition(':')[0]
        module = importlib.import_module(name)
        if hasattr(module, 'onto_model'):
            return module.onto_model, f'{name}:onto_model'
    raise OfficialError(
        f'method {method!r} declares no way to read its official checkpoints '
        f"onto a config's model (MethodSpec.released with onto_model)"
    )


# --- table notes ------------------------------------------------------------------------------


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
