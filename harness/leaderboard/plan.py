"""What a leaderboard has to run: one :class:`RunSpec` per (method, config, dataset, split).

SYSU-MM01 trains once per config (its trials are scored inside the run); RegDB trains once per
split. Each run has its own directory ``OUT/runs/<method>/<config stem>/<dataset>[-split<k>]``
holding its checkpoints, its ``record.json`` and a lock file. A scored-only run (``source``
'untrained': the same network with its initial weights) sits beside it, in ``...-untrained``.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from harness.leaderboard.locks import LOCK_NAME, is_locked
from harness.records import RECORD_NAME, RECORD_SOURCES, read_record, run_leaf
from protocols.datasets import DATASETS
from protocols.datasets.regdb import TRIALS as REGDB_SPLITS

KINDS = ('full', 'demo', 'ablation')
DEMO_REGDB_SPLITS = (1,)
RUN_SPEC_NAME = 'run.json'


@dataclass
class RunSpec:
    """One training + test run. Everything here is plain data: it crosses process boundaries."""

    method: str
    config: str  # path of the method config file
    dataset: str  # 'sysu' | 'regdb'
    split: int | None  # RegDB split 1..10; None for SYSU
    kind: str
    label: str
    row: str | None
    work_dir: str
    data_root: str | None = None
    cfg_options: dict = field(default_factory=dict)
    # 'reproduced': train, then score; the other RECORD_SOURCES are scored only ('untrained': the
    # initial weights; others: ``checkpoint``).
    source: str = 'reproduced'
    checkpoint: str | None = None
    # 'official' runs (harness.official): read the authors' pickles (weights_only=False), and keep
    # the releases fetched for them in this folder (OUT/official).
    trusted: bool = False
    downloads: str | None = None
    # The hash of the config this run is planned with (harness.engine.config.config_hash): a
    # record of another hash in its directory is not this run ('changed'). None: not checked.
    config_hash: str | None = None

    @property
    def config_stem(self) -> str:
        return Path(self.config).stem

    @property
    def key(self) -> str:
        """Short, unique name: ``agw/agw_regdb/regdb-split3`` (``...-untrained``: scored only)."""
        return f'{self.method}/{self.config_stem}/{run_leaf(self.dataset, self.split, self.source)}'

    @property
    def trains(self) -> bool:
        return self.source == 'reproduced'

    @property
    def record_path(self) -> Path:
        return Path(self.work_dir) / RECORD_NAME

    @property
    def lock_path(self) -> Path:
        return Path(self.work_dir) / LOCK_NAME

    def run_options(self) -> dict:
        """The ``cfg_options`` handed to the engine: the user's, plus the RegDB split."""
        opts = dict(self.cfg_options)
        if self.split is not None:
            opts['protocol.split'] = self.split
        return opts

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> RunSpec:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def scored_twin(run: RunSpec, source: str = 'untrained', checkpoint: str | None = None) -> RunSpec:
    """A run that scores ``run``'s network without training it: its initial weights ('untrained')
    or given ones; its directory and key end in ``-<source>``."""
    scored = [s for s in RECORD_SOURCES if s != 'reproduced']
    if source not in scored:
        raise ValueError(f'a scored-only run has source {scored}, got {source!r}')
    leaf = run_leaf(run.dataset, run.split, source)
    return replace(
        run, source=source, checkpoint=checkpoint, work_dir=str(Path(run.work_dir).parent / leaf)
    )


def read_entry(config: str | Path) -> tuple[dict, str]:
    """``(entry, protocol_base)`` of a method config, with a clear error when either is missing."""
    from harness.engine.config import method_config

    cfg = method_config(config)  # with its method_base, if it names one
    entry = cfg.get('entry')
    base = cfg.get('protocol_base')
    if not isinstance(entry, Mapping) or 'kind' not in entry:
        raise ValueError(
            f'{config}: a method config must set entry = dict(method=..., kind=..., label=...); '
            f'found entry={entry!r}'
        )
    if entry['kind'] not in KINDS:
        raise ValueError(
            f'{config}: entry.kind is {entry["kind"]!r}; expected one of {", ".join(KINDS)}'
        )
    if base not in DATASETS:
        raise ValueError(
            f'{config}: protocol_base is {base!r}; expected one of {", ".join(DATASETS)} '
            f'(the protocol the config is laid over)'
        )
    return dict(entry), str(base)


def parse_splits(
    text: str | Iterable[int] | None, default: Iterable[int] = REGDB_SPLITS
) -> tuple[int, ...]:
    """'1-10', '1,3,5', '2' or an iterable of ints -> sorted unique splits in 1..10."""
    if text is None:
        return tuple(default)
    if isinstance(text, str):
        out: set[int] = set()
        for part in filter(None, (p.strip() for p in text.split(','))):
            lo, dash, hi = part.partition('-')
            try:
                rng = range(int(lo), int(hi) + 1) if dash else [int(lo)]
            except ValueError:
                raise ValueError(
                    f'--regdb-splits: cannot read {part!r}; expected e.g. "1-10" or "1,2,5"'
                ) from None
            out.update(rng)
        splits = out
    else:
        splits = set(int(s) for s in text)
    bad = sorted(s for s in splits if s not in REGDB_SPLITS)
    if bad or not splits:
        raise ValueError(
            f'--regdb-splits: {bad or "nothing"} is not a RegDB split; the splits are 1..10'
        )
    return tuple(sorted(splits))


def build_plan(
    methods: Mapping[str, object],
    out: str | Path,
    *,
    names: Iterable[str] | None = None,
    datasets: Iterable[str] = DATASETS,
    kinds: Iterable[str] = ('full', 'ablation'),
    configs: Iterable[str] | None = None,
    regdb_splits: Iterable[int] = REGDB_SPLITS,
    data_roots: Mapping[str, str | None] | None = None,
    cfg_options: Mapping | None = None,
    untrained: bool = False,
) -> list[RunSpec]:
    """Every run to make, in a stable order (method, config, split).

    ``methods`` maps a name to a :class:`harness.plugins.MethodSpec` (anything with
    ``config_files()``); ``names`` picks some of them, ``configs`` picks config stems.
    ``untrained`` adds, after all training runs, one scored-only run per training run: the same
    network with its initial weights (the floor its training must beat).
    """
    names = list(names) if names else sorted(methods)
    unknown = [n for n in names if n not in methods]
    if unknown:
        raise KeyError(
            f'--methods: no method {", ".join(map(repr, unknown))} is installed; '
            f'found: {", ".join(sorted(methods)) or "none"}'
        )
    datasets = list(datasets)
    for ds in datasets:
        if ds not in DATASETS:
            raise ValueError(
                f'--datasets: unknown dataset {ds!r}; expected some of {", ".join(DATASETS)}'
            )
    kinds = set(kinds)
    for k in kinds:
        if k not in KINDS:
            raise ValueError(f'--kinds: unknown kind {k!r}; expected some of {", ".join(KINDS)}')
    wanted_configs = set(configs) if configs else None
    data_roots = dict(data_roots or {})
    out = Path(out)
    runs: list[RunSpec] = []
    seen_configs: set[str] = set()
    for name in names:
        for cfg_path in methods[name].config_files():
            stem = Path(cfg_path).stem
            seen_configs.add(stem)
            if wanted_configs is not None and stem not in wanted_configs:
                continue
            entry, dataset = read_entry(cfg_path)
            if entry['kind'] not in kinds or dataset not in datasets:
                continue
            splits: Iterable[int | None] = regdb_splits if dataset == 'regdb' else (None,)
            for split in splits:
                runs.append(
                    RunSpec(
                        method=name,
                        config=str(cfg_path),
                        dataset=dataset,
                        split=split,
                        kind=entry['kind'],
                        label=str(entry.get('label') or name),
                        row=entry.get('row'),
                        work_dir=str(out / 'runs' / name / stem / run_leaf(dataset, split)),
                        data_root=data_roots.get(dataset),
                        cfg_options=dict(cfg_options or {}),
                    )
                )
    if wanted_configs is not None:
        missing = sorted(wanted_configs - seen_configs)
        if missing:
            raise KeyError(
                f'--configs: no config named {", ".join(missing)} among the selected methods '
                f'(give config file stems, e.g. agw_sysu)'
            )
    if untrained:
        # Scoring is short: last, it fills the slots the training runs leave idle at the end.
        runs += [scored_twin(r, 'untrained') for r in runs]
    return runs


def run_state(run: RunSpec) -> str:
    """'done' | 'failed' | 'busy' (another process holds its lock) | 'partial' (started) |
    'changed' (its directory holds a run, finished or not, of another config) | 'pending'."""
    record = read_record(run.record_path)
    status = (record or {}).get('status')
    if status == 'done':
        return 'changed' if config_change(run, record) else 'done'
    if is_locked(run.lock_path):
        return 'busy'
    if record is not None and config_change(run, record):
        return 'changed'
    if status == 'failed':
        return 'failed'
    if (
        record is not None
        or any(Path(run.work_dir).glob('*.pth'))
        or (Path(run.work_dir) / 'last_checkpoint').exists()
    ):
        return 'partial'
    return 'pending'


def config_change(run: RunSpec, record: Mapping | None = None) -> str | None:
    """Why the run in ``run``'s directory (its ``record``, read when not given) is not a run of
    the config ``run`` is planned with: the keys that differ; None when it is, or when there is
    nothing to compare (no planned hash, no record, a record without a hash)."""
    if run.config_hash is None:
        return None
    record = read_record(run.record_path) if record is None else record
    if not record or not record.get('config_hash'):
        return None
    from harness.engine.config import load_config, run_config_change
    from harness.records import HASH_SCHEME

    if record['config_hash'] == run.config_hash and record.get('config_hash_scheme') == HASH_SCHEME:
        return None
    # Reading the configs takes a moment; a plan asks about each run several times.
    try:
        stamp = run.record_path.stat().st_mtime_ns
    except OSError:
        stamp = None
    key = (str(run.record_path), stamp, record['config_hash'], run.config_hash)
    if key not in _CHANGES:
        cfg = load_config(run.config, run.run_options())
        _CHANGES[key] = run_config_change(run.work_dir, cfg, record)
    return _CHANGES[key]


_CHANGES: dict[tuple, str | None] = {}


def retry_command(runs: Iterable[RunSpec], base_argv: list[str]) -> str:
    """The ``vireid leaderboard`` command that retries exactly ``runs`` (other options kept)."""
    runs = list(runs)
    drop = {'--methods', '--configs', '--datasets', '--regdb-splits', '--kinds', '--rerun'}
    argv: list[str] = []
    skip = False
    for tok in base_argv:
        if skip:
            skip = False
            continue
        flag = tok.split('=', 1)[0]
        if flag in drop:
            skip = '=' not in tok and flag != '--rerun'
            continue
        argv.append(tok)
    argv += [
        '--methods',
        ','.join(sorted({r.method for r in runs})),
        '--configs',
        ','.join(sorted({r.config_stem for r in runs})),
        '--datasets',
        ','.join(d for d in DATASETS if any(r.dataset == d for r in runs)),
        '--kinds',
        ','.join(sorted({r.kind for r in runs})),
    ]
    splits = sorted({r.split for r in runs if r.split is not None})
    if splits:
        argv += ['--regdb-splits', ','.join(map(str, splits))]
    return shlex.join(['vireid', 'leaderboard', *argv])
