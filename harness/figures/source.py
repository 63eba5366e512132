"""What a run directory holds for its figures: config, record, checkpoint, dataset, kept features.

A run directory of ``vireid train`` or of the leaderboard holds ``config.py`` (the effective
config, dumped when the run started), ``record.json``, its checkpoints with ``last_checkpoint``
naming the newest, and, when the test kept them, ``features.npz``. Kept features are only used
when they still give the record's numbers (they are scored again): a file replaced or damaged
after the test is never drawn as the run's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from mmengine.config import Config

from harness.engine.config import load_config
from harness.records import RECORD_NAME, open_record, run_leaf
from protocols.datasets import load_dataset
from protocols.datasets.base import ImageRecord
from protocols.evaluation import evaluate, test_records
from protocols.scoring import load_features

CONFIG = 'config.py'
LAST_CHECKPOINT = 'last_checkpoint'
# Kept features scored again must give the record's mean R1 and mAP to within this many points:
# a few ranks move between devices (the run may have ranked on a GPU), another model's features
# move them by far more.
RESCORE_TOLERANCE = 0.5


@dataclass
class RunSource:
    """A run directory, opened and checked; ``checkpoint`` is None when none was found."""

    run_dir: Path
    config_path: Path
    cfg: Config
    record: dict[str, Any]
    data_root: Path
    checkpoint: Path | None
    checkpoint_problem: str  # why ``checkpoint`` is None ('' when it is set)
    records: list[ImageRecord] = field(default_factory=list)  # every test image, protocol order
    dataset_index: Any = None  # the dataset as read from disk (protocols.datasets)
    kept_problem: str = ''  # why the kept features were not used ('' when they were, or absent)

    @property
    def dataset(self) -> str:
        return self.cfg.protocol['dataset']

    @property
    def protocol(self) -> dict[str, Any]:
        return dict(self.cfg.protocol)

    @property
    def distance(self) -> str:
        return self.cfg.get('test', {}).get('distance', 'cosine')

    @property
    def seed(self) -> int:
        return int(self.cfg.get('randomness', {}).get('seed', 0))

    @property
    def label(self) -> str:
        entry = self.record.get('entry') or dict(self.cfg.get('entry', {}))
        return (
            entry.get('label') or self.record.get('method_title') or Path(self.cfg.config_file).stem
        )

    @property
    def title(self) -> str:
        split = self.protocol.get('split') if self.dataset == 'regdb' else None
        return f'{self.label} on {self.dataset}' + (f' split {split}' if split else '')

    def require_checkpoint(self) -> Path:
        """The checkpoint, or an error that says what is missing, where, and how to get it back."""
        if self.record.get('source') == 'untrained':
            split = self.protocol.get('split') if self.dataset == 'regdb' else None
            trained = self.run_dir.with_name(run_leaf(self.dataset, split))
            raise FileNotFoundError(
                f'run {self.run_dir} scored the untrained network (record source '
                f"'untrained'): it has no trained model to draw. The figures of its trained run "
                f'show this network beside the trained one: vireid figures {trained}'
            )
        if self.checkpoint is None:
            kept = self.kept_problem or 'its test kept no features (features.npz)'
            config = self.record.get('config')
            if not config or not Path(config).is_file():
                config = f'a copy of {self.config_path}'  # a run never trains over its input
            raise FileNotFoundError(
                f'run {self.run_dir} has no checkpoint to draw its trained model from: '
                f'{self.checkpoint_problem}; and {kept}. Fix: '
                f'train the run again (`vireid train {config} --work-dir {self.run_dir} '
                f'--resume`, or the same `vireid leaderboard` command, which resumes it), or pass '
                f'--checkpoint FILE'
            )
        return self.checkpoint

    def kept_features(self) -> np.ndarray | None:
        """The features the run's own test wrote, rows in ``records`` order, when they fit the
        dataset as it is now and still give the record's numbers; None otherwise (then
        ``kept_problem`` says why, when the file is there)."""
        name = self.record.get('features')
        if self.record.get('status') != 'done' or not name:
            return None
        path = self.run_dir / name
        if not path.is_file():
            return None
        paths, feats = load_features(path, self.data_root)
        rows = {p: i for i, p in enumerate(paths)}
        if len(rows) != len(paths) or set(rows) != {r.path for r in self.records}:
            return None  # the dataset changed since the test; extract again
        feats = feats[[rows[r.path] for r in self.records]]
        mismatch = self._rescore_mismatch(feats)
        if mismatch:
            self.kept_problem = (
                f'its kept features {path} no longer match its record ({mismatch}): the file was '
                'replaced or damaged after the test'
            )
            return None
        return feats

    def _rescore_mismatch(self, feats: np.ndarray) -> str:
        """'' when ``feats`` give the record's mean R1 and mAP in every setting it holds, else
        the first difference (e.g. ``all-single R1 0.0 against the record's 47.5``)."""
        recorded = self.record.get('results') or {}
        if not isinstance(recorded, dict) or not recorded:
            return ''
        try:
            scored = evaluate(
                self.dataset_index or self.dataset,
                None if self.dataset_index is not None else self.data_root,
                self.protocol,
                self.records,
                feats,
                self.distance,
            )
        except ValueError as err:  # e.g. NaN rows
            return f'they cannot be scored: {err}'
        for setting, result in scored.items():
            mean = (recorded.get(setting) or {}).get('mean') if setting in recorded else None
            if not isinstance(mean, dict):
                continue
            for key in ('R1', 'mAP'):
                want, got = mean.get(key), result.mean[key]
                if isinstance(want, (int, float)) and abs(float(got) - want) > RESCORE_TOLERANCE:
                    return f"{setting} {key} {float(got):.2f} against the record's {want:.2f}"
        return ''


def _named_checkpoint(run_dir: Path, name: str) -> Path:
    """The checkpoint ``name`` inside ``run_dir``: a run writes its checkpoints there, and the
    folder may have been moved or copied since ``name`` was written."""
    return run_dir / Path(name).name


def find_checkpoint(run_dir: Path, record: dict[str, Any]) -> tuple[Path | None, str]:
    """(the checkpoint of the scored model, '') or (None, why none was found).

    The scored model is the final epoch's, i.e. the one ``last_checkpoint`` names (the record
    keeps the same path); for an optimistic (best-epoch) run it is the ``best_*.pth`` file.
    """
    if record.get('optimistic'):
        best = sorted(run_dir.glob('best_*.pth'), key=lambda p: p.stat().st_mtime)
        if best:
            return best[-1], ''
    names = []
    if record.get('checkpoint'):
        names.append(str(record['checkpoint']))
    last = run_dir / LAST_CHECKPOINT
    if last.is_file():
        names.append(last.read_text().strip())
    paths = list(dict.fromkeys(_named_checkpoint(run_dir, name) for name in names))
    for path in paths:
        if path.is_file():
            return path, ''
    if paths:
        return (
            None,
            f'{" and ".join(map(str, paths))} (named by {RECORD_NAME} / {LAST_CHECKPOINT}) '
            f'does not exist',
        )
    return (
        None,
        f'neither {RECORD_NAME} nor {LAST_CHECKPOINT} in it names a checkpoint (the run has not '
        f'finished an epoch)',
    )


def open_run(
    run_dir: str | Path, data_root: str | Path | None = None, checkpoint: str | Path | None = None
) -> RunSource:
    """Opens ``run_dir``: config (``data_root`` replaced when given), record and checkpoint."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(
            f'run directory {run_dir} does not exist; pass the --work-dir of '
            f'`vireid train` or a leaderboard run (OUT/runs/METHOD/CONFIG/DATASET)'
        )
    config_path = run_dir / CONFIG
    if not config_path.is_file():
        raise FileNotFoundError(
            f'{run_dir} has no {CONFIG}, so it is not a run directory (vireid train '
            f"and the leaderboard write the run's config there when it starts); pass "
            f'the --work-dir of `vireid train` or OUT/runs/METHOD/CONFIG/DATASET'
        )
    cfg = load_config(config_path)
    record = open_record(run_dir)
    root = Path(data_root if data_root is not None else cfg.data_root)
    if not root.is_dir():
        given = 'given with --data-root' if data_root is not None else f'data_root in {config_path}'
        raise FileNotFoundError(
            f'dataset root {root} ({given}) does not exist; pass --data-root DIR '
            f'with the {cfg.protocol["dataset"]} dataset the run was trained on'
        )
    cfg.data_root = str(root)
    if checkpoint is not None:
        ckpt: Path | None = Path(checkpoint)
        problem = ''
        if not ckpt.is_file():
            raise FileNotFoundError(f'checkpoint {ckpt} (given with --checkpoint) does not exist')
    else:
        ckpt, problem = find_checkpoint(run_dir, record)
    ds = load_dataset(cfg.protocol['dataset'], root)
    records = test_records(ds, None, cfg.protocol)
    return RunSource(
        run_dir=run_dir,
        config_path=config_path,
        cfg=cfg,
        record=record,
        data_root=root,
        checkpoint=ckpt,
        checkpoint_problem=problem,
        records=records,
        dataset_index=ds,
    )
