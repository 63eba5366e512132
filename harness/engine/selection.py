"""Optimistic "best epoch" selection as an official script runs it: which epochs, which score.

The reported model is the final epoch's. A method may reproduce its official script's test-set
model selection with ``selection = dict(rule='best-test-rank1', epochs=[...], criterion=...)``;
such records are labelled optimistic. ``epochs`` are 1-based counts of finished epochs (after
epoch ``e`` of a ``for epoch in range(...)`` loop, ``e + 1`` epochs have finished), tested
exactly as listed (:class:`ListedEpochsTrainLoop`). ``criterion`` is the number ranked:

- ``'mean-r1'`` (default): SYSU-MM01 all-search single-shot Rank-1, mean over the protocol's
  trials; RegDB the mean Rank-1 of both directions (MPANet's ``train.py`` rule); LLCM likewise the
  mean Rank-1 of its directions.
- ``'mmn'``: ZYK100/MMN ``train.py`` (lines 318-392, 419-438 at 01d70d5): the Rank-1 of the test
  feature, scored with ``eval_regdb`` (no same-camera removal, position CMC) on one query/gallery
  pair: SYSU all-search queries against the single-shot gallery that ``random.seed(0)`` draws
  (the ``seeded`` sampler's trial 0); RegDB visible queries against the thermal gallery. MMN's
  code has no LLCM: the criterion is refused there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mmengine.runner import EpochBasedTrainLoop

from harness.registry import LOOPS
from protocols.datasets import load_dataset
from protocols.metrics import ProtocolResult, eval_regdb, pairwise_distance
from protocols.trials import regdb_query_gallery, seeded_gallery

CRITERIA = ('mean-r1', 'mmn')


def check_criterion(name: str) -> str:
    if name not in CRITERIA:
        raise ValueError(f'selection.criterion = {name!r}; choose one of {", ".join(CRITERIA)}')
    return name


def mean_r1(results: dict[str, ProtocolResult]) -> float:
    if 'all-single' in results:
        return results['all-single'].mean['R1']
    return float(np.mean([r.mean['R1'] for r in results.values()]))


def mmn_r1(
    dataset: str,
    data_root: str,
    protocol: dict,
    records: Sequence,
    feats: np.ndarray,
    distance: str,
) -> float:
    """MMN's in-training score (see the module docstring), in percent."""
    if dataset not in ('sysu', 'regdb'):
        raise ValueError(
            f"selection.criterion 'mmn' reproduces ZYK100/MMN train.py, which has no {dataset} "
            "test; use criterion 'mean-r1'"
        )
    ds = load_dataset(dataset, data_root)
    rows = {r.path: i for i, r in enumerate(records)}
    if dataset == 'sysu':
        query = ds.query_records()
        candidates = ds.gallery_candidates()
        drawn = seeded_gallery(ds, 'all', 1, trial=0, candidates=candidates)
        gallery = [candidates[i] for i in drawn]
    else:
        query, gallery = regdb_query_gallery(ds, protocol['split'], 'v2t')
    q = feats[[rows[r.path] for r in query]]
    g = feats[[rows[r.path] for r in gallery]]
    cmc, _, _ = eval_regdb(
        pairwise_distance(q, g, distance), [r.pid for r in query], [r.pid for r in gallery]
    )
    return float(cmc[0] * 100)


def score(
    criterion: str,
    results: dict[str, ProtocolResult],
    dataset: str,
    data_root: str,
    protocol: dict,
    records: Sequence,
    feats: np.ndarray,
    distance: str = 'cosine',
) -> float:
    """The number a best-epoch rule ranks epochs by."""
    if check_criterion(criterion) == 'mmn':
        if not isinstance(feats, np.ndarray):  # features kept on the GPU by the metric
            feats = feats.detach().cpu().numpy()
        return mmn_r1(dataset, data_root, protocol, records, feats, distance)
    return mean_r1(results)


@LOOPS.register_module()
class ListedEpochsTrainLoop(EpochBasedTrainLoop):
    """mmengine's epoch loop, testing (validating) after exactly the listed finished-epoch counts.

    mmengine validates when ``epoch % val_interval == 0`` and after the last epoch, which cannot
    express e.g. MMN's 3, 5, ..., 81; this loop validates after every epoch in ``val_epochs``.
    """

    def __init__(
        self, runner, dataloader, max_epochs: int, val_epochs: Sequence[int], **kwargs
    ) -> None:
        super().__init__(runner, dataloader, max_epochs=max_epochs, val_interval=1, **kwargs)
        bad = [e for e in val_epochs if not 1 <= int(e) <= max_epochs]
        if bad:
            raise ValueError(
                f'selection.epochs {bad} are outside 1..{max_epochs} (counts of finished epochs)'
            )
        self.val_epochs = frozenset(int(e) for e in val_epochs)

    def run(self):
        self.runner.call_hook('before_train')
        while self._epoch < self._max_epochs and not self.stop_training:
            self.run_epoch()
            if self.runner.val_loop is not None and self._epoch in self.val_epochs:
                self.runner.val_loop.run()
        self.runner.call_hook('after_train')
        return self.runner.model
