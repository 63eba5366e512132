"""What a run directory holds for its figures: config, record, checkpoint, dataset, kept features.

A run directory of ``vireid train`` or of the leaderboard holds ``config.py`` (the effective
config, dumped when the run started), ``record.json``, its checkpoints with ``last_checkpoint``
naming the newest, and, when the test kept them, ``features.npz``.
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
from protocols.evaluation import test_records
from protocols.scoring import load_features

CONFIG = 'config.py'
LAST_CHECKPOINT = 'last_checkpoint'


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
            raise FileNotFoundError(
                f'run {self.run_dir} has no checkpoint to draw its trained model from: '
                f'{self.checkpoint_problem}; and its test kept no features (features.npz). Fix: '
                f'train the run again (`vireid train {self.config_path} --work-dir {self.run_dir} '
                f'--resume`, or the same `vireid leaderboard` command, which resumes it), or pass '
                f'--checkpoint FILE'
            )
        return self.checkpoint

    def kept_features(self) -> np.ndarray | None:
        """The features the run's own test wrote, rows in ``records`` order, when they fit the
        dataset as it is now; None otherwise."""
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
        return feats[[rows[r.path] for r in self.records]]


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
    )
