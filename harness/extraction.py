"""Test features of a trained model for every image a protocol scores (``vireid extract``).

The features come out exactly as ``vireid test`` computes them: the same test images (the
protocol's :func:`~protocols.evaluation.test_records`, resized through the same decode-once
cache), the same modality-pure batches, and the model's own ``test_step`` (its data preprocessor,
then ``predict``). Saved with :func:`protocols.scoring.save_features`, they are the file
``vireid score`` reads, so a user can score, share or re-rank them outside the harness.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmengine.dataset import DefaultSampler, default_collate
from torch.utils.data import DataLoader

from harness.data.datasets import VIReIDTestSet, train_set
from harness.data.samplers import ModalityBatchSampler
from harness.engine.config import load_config
from harness.models.base import VIReIDModel
from harness.plugins import discover, resolve_config
from protocols.evaluation import settings


@dataclass
class Features:
    """One feature row per test image; ``paths`` relative to the dataset root, in protocol order."""

    paths: list[str]
    features: np.ndarray
    dataset: str
    protocol: dict[str, Any]
    distance: str
    config: str

    def score_commands(self, out: str | Path, root: str | Path) -> list[str]:
        """The ``vireid score`` command of every setting the protocol reports."""
        base = (
            f'vireid score {out} --dataset {self.dataset} --root {root} --distance {self.distance}'
        )
        if self.dataset == 'regdb':
            return [
                f'{base} --split {self.protocol["split"]} --direction {d}'
                for d in settings('regdb', self.protocol)
            ]
        if self.dataset == 'llcm':
            return [f'{base} --direction {d}' for d in settings('llcm', self.protocol)]
        sampler = self.protocol['sampler']
        return [
            f'{base} --mode {mode} --shots {shots} --sampler {sampler}'
            for mode in self.protocol['modes']
            for shots in self.protocol['shots']
        ]


@torch.no_grad()
def extract_features(
    model: VIReIDModel,
    dataset: str,
    data_root: str | Path,
    protocol: dict,
    input_size: tuple[int, int],
    batch_size: int = 64,
    num_workers: int = 0,
    cache_dir: str | Path | None = None,
) -> tuple[list[str], np.ndarray]:
    """``(paths, features)`` of every test image of ``protocol``, through ``model.test_step``."""
    test_set = VIReIDTestSet(
        dataset, str(data_root), protocol, input_size, None if cache_dir is None else str(cache_dir)
    )
    batches = ModalityBatchSampler(DefaultSampler(test_set, shuffle=False), batch_size)
    loader = DataLoader(
        test_set, batch_sampler=batches, num_workers=num_workers, collate_fn=default_collate
    )
    model.eval()
    feats: list[torch.Tensor | None] = [None] * len(test_set)
    for batch in loader:
        for out in model.test_step(batch):
            feats[out['index']] = out['feat']
    missing = [test_set.records[i].path for i, f in enumerate(feats) if f is None]
    if missing:
        raise RuntimeError(
            f'no feature was computed for {len(missing)} test image(s), e.g. {missing[0]}'
        )
    return [r.path for r in test_set.records], torch.stack(feats).float().numpy()


def extract_checkpoint(
    config: str | Path,
    checkpoint: str | Path,
    data_root: str | Path | None = None,
    split: int | None = None,
    device: str | None = None,
    batch_size: int | None = None,
    num_workers: int = 0,
) -> Features:
    """Load ``checkpoint`` into the model of ``config`` and extract the protocol's test features.

    ``config`` is a file or an installed plugin's config name; ``split`` picks the RegDB split
    (the one the checkpoint was trained on); ``device`` defaults to CUDA when there is one.
    """
    from harness.api import load_model

    discover()
    config = resolve_config(config)
    cfg = load_config(config)
    if data_root is not None:
        cfg.data_root = str(data_root)
    dataset = cfg.protocol['dataset']
    protocol = dict(cfg.protocol)
    if split is not None:
        if dataset != 'regdb':
            raise ValueError(f'--split applies to RegDB; {config} is a {dataset} config')
        protocol['split'] = int(split)
    if not Path(cfg.data_root).is_dir():
        raise FileNotFoundError(
            f'dataset root {cfg.data_root} does not exist; pass --data-root DIR'
        )
    # The classifier size, as `vireid test` sees it: the protocol's training identities.
    num_classes = train_set(dataset, cfg.data_root, protocol).num_classes
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model = load_model(config, checkpoint, device=device, num_classes=num_classes)
    test = cfg.get('test', {})
    paths, feats = extract_features(
        model,
        dataset,
        cfg.data_root,
        protocol,
        tuple(cfg.input_size),
        batch_size=int(batch_size or test.get('batch_size', 64)),
        num_workers=num_workers,
        cache_dir=cfg.get('cache_dir'),
    )
    return Features(
        paths, feats, dataset, protocol, str(test.get('distance', 'cosine')), str(config)
    )
