"""The mmengine metric: features of every test image in, every protocol setting out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from mmengine.dist import broadcast_object_list, gather_object, get_world_size, is_main_process
from mmengine.evaluator import BaseMetric

from harness.engine import selection
from harness.registry import METRICS
from protocols.evaluation import evaluate, test_records
from protocols.metrics import REPORTED_METRIC_KEYS, ProtocolResult
from protocols.scoring import save_features

# The test's features are kept with the record (``features.npz``, the file `vireid score` reads
# and `vireid figures` reuses) unless the config says ``test = dict(keep_features=False)``; above
# this size only ``keep_features=True`` keeps them. 2048-d features of the whole SYSU-MM01 test
# set are ~87 MB, less than one ResNet-50 checkpoint with its optimizer state.
KEEP_FEATURES_MAX_BYTES = 128 * 2**20


def selection_score(results: dict[str, ProtocolResult]) -> float:
    """The default best-epoch score (criterion ``'mean-r1'``, harness.engine.selection)."""
    return selection.mean_r1(results)


@METRICS.register_module()
class VIReIDMetric(BaseMetric):
    """Scores every setting and trial of the protocol (SYSU, RegDB, LLCM) from one extraction.

    ``results`` (the full :class:`ProtocolResult` per setting) stays on the instance after
    ``evaluate`` for the run record; the returned dict holds the logged scalars.

    In a single process, features stay where the model left them: on a GPU the distances, the
    ranking and the per-query metrics run there (:mod:`protocols.device`); on a CPU the host path
    runs. Several processes gather the features on the CPU of the first, as mmengine does.
    """

    default_prefix = 'reid'

    def __init__(
        self,
        dataset: str,
        data_root: str,
        protocol: dict,
        distance: str = 'cosine',
        selection_criterion: str = 'mean-r1',
        collect_device: str = 'cpu',
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.dataset, self.data_root, self.protocol, self.distance = (
            dataset,
            data_root,
            dict(protocol),
            distance,
        )
        self.selection_criterion = selection.check_criterion(selection_criterion)
        self.results_by_setting: dict[str, ProtocolResult] = {}
        # (paths, N x D), the last test's; a tensor stays on its device until it is saved
        self.features: tuple[list[str], np.ndarray | torch.Tensor] | None = None

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        gather_on_host = get_world_size() > 1
        for s in data_samples:
            feat = s['feat'].detach().to(torch.float32)
            self.results.append((s['index'], feat.cpu() if gather_on_host else feat))

    def evaluate(self, size: int) -> dict:
        """Like ``BaseMetric.evaluate``, but collects every process's features whole.

        mmengine's collection interleaves the ranks' results and cuts them to ``size``, which
        assumes equal, padded shares in sampler order; test batches here are regrouped by
        modality and shared without padding (``ShardSampler``), so the results are gathered as
        they are and put in order by their image index.
        """
        parts = gather_object(self.results) if get_world_size() > 1 else [self.results]
        if is_main_process():
            metrics = self.compute_metrics([r for part in parts for r in part])
            metrics = [{f'{self.prefix}/{k}' if self.prefix else k: v for k, v in metrics.items()}]
        else:
            metrics = [None]
        broadcast_object_list(metrics)
        self.results.clear()
        return metrics[0]

    def compute_metrics(self, results: list) -> dict[str, float]:
        records = test_records(self.dataset, self.data_root, self.protocol)
        results = sorted(results, key=lambda r: r[0])
        indices = [i for i, _ in results]
        if indices != list(range(len(records))):
            raise RuntimeError(
                f'the evaluator received {len(indices)} features for '
                f'{len(set(indices))} of {len(records)} test images; the test '
                f'dataloader must give each test image once'
            )
        feats = torch.stack([f for _, f in results])
        finite = feats.isfinite().all(dim=1)
        if not bool(finite.all()):
            bad = torch.nonzero(~finite).flatten().tolist()
            raise RuntimeError(
                f'{len(bad)} test features are NaN/inf (first: {records[bad[0]].path}); '
                'the model diverged — lower the learning rate or check AMP'
            )
        if feats.device.type == 'cpu':
            feats = feats.numpy()  # the host path: faster on a CPU than torch's sort
        self.features = ([r.path for r in records], feats)  # still on the device, if any
        self.results_by_setting = evaluate(
            self.dataset, self.data_root, self.protocol, records, feats, distance=self.distance
        )
        out = {
            f'{setting}/{k}': res.mean[k]
            for setting, res in self.results_by_setting.items()
            for k in REPORTED_METRIC_KEYS
        }
        out['selection_score'] = selection.score(
            self.selection_criterion,
            self.results_by_setting,
            self.dataset,
            self.data_root,
            self.protocol,
            records,
            feats,
            self.distance,
        )
        return out


def keep_test_features(metric: VIReIDMetric, keep: bool | None, out: str | Path) -> str | None:
    """Writes the metric's last test features to ``out`` when ``keep`` (None: when small); returns
    the file name for the record, or None when nothing was written."""
    if metric.features is None or keep is False:
        return None
    paths, feats = metric.features
    nbytes = (
        feats.element_size() * feats.nelement() if isinstance(feats, torch.Tensor) else feats.nbytes
    )
    if keep is None and nbytes > KEEP_FEATURES_MAX_BYTES:
        return None
    if isinstance(feats, torch.Tensor):
        feats = feats.cpu().numpy()
    return save_features(out, paths, feats).name
