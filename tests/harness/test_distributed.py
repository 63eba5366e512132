"""One run on N processes trains and tests like one process (harness.dist, the samplers' shares).

Ranks are simulated by giving the samplers ``rank``/``world_size``; the gathering, the gradients
and the test-time collection run in real ``gloo`` process groups of 2 and 3 forked processes.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import traceback
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from harness.data.samplers import CrossModalityIdentitySampler, ModalityBatchSampler, ShardSampler
from harness.dist import gather_batch
from harness.engine.config import load_config
from harness.engine.metric import VIReIDMetric
from harness.engine.run import _recipe_change, runner_config
from harness.models.losses import (
    WeightedRegularizedTriplet,
    center_cluster_loss,
    hetero_center_loss,
)
from methods.mpanet.sampler import MPANetIdentitySampler

TOY_PLUGIN = Path(__file__).resolve().parents[1] / 'fixtures' / 'toy_plugin'
TOY_SYSU = TOY_PLUGIN / 'vireid_toy' / 'configs' / 'toy_sysu.py'
P, K = 6, 2  # 12 images per modality: shared evenly by 1, 2, 3 (and 4, 6) ranks
SAMPLERS = [CrossModalityIdentitySampler, MPANetIdentitySampler]


class Images:
    """A dataset as the samplers see it: labels and modalities (and a length)."""

    def __init__(self, n_ids: int = 14, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        labels, modalities = [], []
        for pid in range(n_ids):
            nv, ni = rng.integers(3, 9, size=2)
            labels += [pid] * (nv + ni)
            modalities += [0] * nv + [1] * ni
        order = rng.permutation(len(labels))
        self.labels, self.modalities = np.array(labels)[order], np.array(modalities)[order]

    def __len__(self) -> int:
        return len(self.labels)


def rank_batches(sampler) -> np.ndarray:
    idx = np.fromiter(iter(sampler), dtype=np.int64)
    assert len(idx) == len(sampler)
    return idx.reshape(-1, sampler.batch_size)


def join_shares(shares: list[np.ndarray]) -> np.ndarray:
    """Rank shares of one batch -> the global batch: visible halves in rank order, then infrared."""
    halves = [np.split(s, 2) for s in shares]
    return np.concatenate([h[0] for h in halves] + [h[1] for h in halves])


@pytest.mark.parametrize('sampler_cls', SAMPLERS)
@pytest.mark.parametrize('world_size', [2, 3])
def test_ranks_together_see_exactly_the_batches_of_one_process(sampler_cls, world_size):
    ds = Images()
    for epoch in range(3):
        one = sampler_cls(ds, P, K, seed=7, rank=0, world_size=1)
        one.set_epoch(epoch)
        expected = rank_batches(one)
        ranks = []
        for rank in range(world_size):
            s = sampler_cls(ds, P, K, seed=7, rank=rank, world_size=world_size)
            s.set_epoch(epoch)
            assert s.batch_size == 2 * P * K // world_size
            ranks.append(rank_batches(s))
        # Same steps per epoch on every rank as on one process, and the same global batches.
        assert all(len(r) == len(expected) for r in ranks)
        for b, batch in enumerate(expected):
            shares = [r[b] for r in ranks]
            for share in shares:  # each share is [visible | infrared] with aligned identities
                vis, ir = np.split(share, 2)
                assert (ds.modalities[vis] == 0).all() and (ds.modalities[ir] == 1).all()
                assert np.array_equal(ds.labels[vis], ds.labels[ir])
            assert np.array_equal(join_shares(shares), batch)


@pytest.mark.parametrize('sampler_cls', SAMPLERS)
def test_a_batch_the_ranks_cannot_share_evenly_is_refused(sampler_cls):
    with pytest.raises(
        ValueError,
        match=r'12 visible \+ 12 infrared images cannot be split '
        r'evenly over 5',
    ):
        sampler_cls(Images(), P, K, rank=0, world_size=5)


class TestImages:
    __test__ = False

    def __init__(self, n: int, seed: int = 0) -> None:
        self.modalities = np.random.default_rng(seed).integers(0, 2, size=n)

    def __len__(self) -> int:
        return len(self.modalities)


@pytest.mark.parametrize('n_images', [10_579, 4_120, 7])
def test_ranks_together_extract_every_test_image_exactly_once(n_images):
    ds = TestImages(n_images)
    one = [i for b in ModalityBatchSampler(ShardSampler(ds, rank=0, world_size=1), 64) for i in b]
    assert sorted(one) == list(range(n_images))
    for world_size in (2, 3):
        seen = []
        for rank in range(world_size):
            sampler = ModalityBatchSampler(ShardSampler(ds, rank=rank, world_size=world_size), 64)
            batches = list(sampler)
            assert len(batches) == len(sampler)
            for batch in batches:
                assert len(set(ds.modalities[batch])) == 1 and len(batch) <= 64
                seen += batch
        assert sorted(seen) == sorted(one) == list(range(n_images))


def test_engine_config_for_several_processes(toy_plugin, monkeypatch):
    cfg = load_config(TOY_SYSU)
    alone = runner_config(cfg, '/tmp/unused', num_classes=5)
    assert alone['train_dataloader']['batch_size'] == 16 and 'sync_bn' not in alone
    monkeypatch.setenv('WORLD_SIZE', '2')
    two = runner_config(cfg, '/tmp/unused', num_classes=5, launcher='pytorch')
    assert two['train_dataloader']['batch_size'] == 8  # each process: half of every global batch
    assert two['train_dataloader']['sampler'] == alone['train_dataloader']['sampler']
    assert two['sync_bn'] == 'torch'
    assert two['test_dataloader']['sampler'] == dict(type='ShardSampler')
    monkeypatch.setenv('WORLD_SIZE', '3')
    with pytest.raises(ValueError, match='cannot be split evenly over 3 processes'):
        runner_config(cfg, '/tmp/unused', num_classes=5, launcher='pytorch')


def test_a_model_whose_losses_do_not_gather_is_not_comparable_on_several_gpus():
    from harness.models.cross_modality import CrossModalityReID as AGW  # AGW is a config of it
    from methods.mmn.model import MMN
    from methods.mpanet.model import MPANet
    from methods.two_stream_mhsa.model import TwoStreamMHSA

    class Plain(nn.Module):
        pass

    assert all(cls.gathers_global_batch for cls in (AGW, MMN, MPANet, TwoStreamMHSA))
    reason = _recipe_change(SimpleNamespace(model=Plain()), 2)
    assert 'trained on 2 processes' in reason and 'gathers_global_batch' in reason
    assert _recipe_change(SimpleNamespace(model=Plain()), 1) is None
    gathering = Plain()
    gathering.gathers_global_batch = True
    assert _recipe_change(SimpleNamespace(model=gathering), 4) is None


# ------------------------------------------------------------------------------------------------
# Real process groups (gloo, CPU)

D_IN, D, C = 10, 6, 14


def training_step(rank: int, world_size: int) -> dict:
    """One step of a small model with a per-sample loss and three batch-level losses, as a rank of
    ``world_size`` would run it under DDP (gradients averaged over the ranks afterwards)."""
    ds = Images()
    inputs = torch.from_numpy(np.random.default_rng(1).normal(size=(len(ds), D_IN))).float()
    sampler = CrossModalityIdentitySampler(ds, P, K, seed=3, rank=rank, world_size=world_size)
    idx = torch.as_tensor(rank_batches(sampler)[0])
    labels = torch.as_tensor(ds.labels)[idx]
    modality = torch.as_tensor(ds.modalities)[idx]
    torch.manual_seed(0)
    embed, head = nn.Linear(D_IN, D), nn.Linear(D, C)
    feats = embed(inputs[idx])
    loss_id = F.cross_entropy(head(feats), labels)  # per sample: local mean
    all_feats, all_labels = gather_batch(feats), gather_batch(labels)
    loss_tri = WeightedRegularizedTriplet()(all_feats, all_labels)[0]
    loss_cc = center_cluster_loss(all_feats, all_labels)
    loss_hc = hetero_center_loss(all_feats, all_labels, gather_batch(modality), [(0, 1)])
    (loss_id + loss_tri + loss_cc + loss_hc).backward()
    grads = {}
    for name, p in [*embed.named_parameters(prefix='embed'), *head.named_parameters(prefix='head')]:
        if world_size > 1:
            dist.all_reduce(p.grad)
            p.grad /= world_size  # what DistributedDataParallel does
        grads[name] = p.grad
    batch_losses = torch.stack([loss_tri, loss_cc, loss_hc]).detach()
    return dict(grads=grads, labels=all_labels, batch_losses=batch_losses)


class CollectedIndices(VIReIDMetric):
    def compute_metrics(self, results: list) -> dict:
        return {'indices': sorted(i for i, _ in results), 'rows': len(results)}


def collect_test_features(rank: int, world_size: int, n_images: int) -> dict:
    metric = CollectedIndices('sysu', '/nowhere', {})
    for i in ShardSampler(TestImages(n_images), rank=rank, world_size=world_size):
        metric.process({}, [dict(index=i, feat=torch.full((3,), float(i)))])
    return metric.evaluate(n_images)


def _rank_main(rank: int, world_size: int, init_file: str, out: str) -> None:
    try:
        torch.set_num_threads(1)
        dist.init_process_group(
            'gloo', init_method=f'file://{init_file}', rank=rank, world_size=world_size
        )
        try:
            result = dict(
                step=training_step(rank, world_size),
                collected=collect_test_features(rank, world_size, 11),
            )
        finally:
            dist.destroy_process_group()
        torch.save(result, f'{out}/rank{rank}.pt')
    except BaseException:
        Path(f'{out}/rank{rank}.err').write_text(traceback.format_exc())
        raise


@pytest.mark.parametrize('world_size', [2, 3])
def test_gathered_losses_give_the_one_process_gradients_in_a_gloo_group(world_size, tmp_path):
    ctx = mp.get_context('fork')
    args = (world_size, str(tmp_path / 'pg'), str(tmp_path))
    procs = [ctx.Process(target=_rank_main, args=(r, *args)) for r in range(world_size)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        if p.is_alive():
            p.kill()
    errors = [e.read_text() for e in tmp_path.glob('rank*.err')]
    assert not errors and all(p.exitcode == 0 for p in procs), '\n'.join(errors)
    reference = training_step(0, 1)
    for rank in range(world_size):
        got = torch.load(tmp_path / f'rank{rank}.pt', weights_only=False)
        # The global batch, in the one-process order.
        assert torch.equal(got['step']['labels'], reference['labels'])
        torch.testing.assert_close(got['step']['batch_losses'], reference['batch_losses'])
        for name, grad in reference['grads'].items():
            torch.testing.assert_close(got['step']['grads'][name], grad, rtol=1e-5, atol=1e-6)
        # Test time: every rank's features reach the metric whole, each image once.
        assert got['collected'] == {'reid/indices': list(range(11)), 'reid/rows': 11}


def test_one_process_needs_no_group():
    x = torch.randn(4, 3, requires_grad=True)
    assert gather_batch(x) is x
    assert not (dist.is_available() and dist.is_initialized())
    assert os.environ.get('WORLD_SIZE') in (None, '1')


def test_the_generic_model_gives_batch_level_losses_the_global_batch(monkeypatch):
    """Under DDP CrossModalityReID (AGW's model) hands every loss but the per-sample identity loss
    the gathered batch: here a stand-in for two processes doubles each rank's rows."""
    import harness.models.cross_modality as cm
    from harness.registry import MODELS

    seen: dict[str, int] = {}

    def two_ranks(x, blocks=2):
        return torch.cat([x, x])

    class Recorder(nn.Module):
        def __init__(self, name, per_sample=False):
            super().__init__()
            self.name, self.per_sample = name, per_sample

        def forward(self, x, labels):
            seen[self.name] = x.shape[0]
            assert labels.shape[0] == x.shape[0]
            return x.float().pow(2).mean()

    model = MODELS.build(
        dict(
            type='CrossModalityReID',
            num_classes=4,
            backbone=dict(
                type='TwoStreamResNet',
                share_from=1,
                depth=50,
                pretrained=False,
                blocks=(1, 1, 1, 1),
                base_channels=4,
            ),
            neck=dict(type='GeneralizedMeanPooling', p=3.0),
            head=dict(type='BNNeckHead'),
            losses=dict(
                id=dict(type='IdentityLoss', input='logits'),
                tri=dict(type='WeightedRegularizedTriplet', input='pool'),
            ),
        )
    )
    model.losses['id_rec'], model.loss_inputs['id_rec'] = Recorder('id', True), 'logits'
    model.losses['tri_rec'], model.loss_inputs['tri_rec'] = Recorder('tri'), 'pool'
    model.loss_weights.update(id_rec=1.0, tri_rec=1.0)
    monkeypatch.setattr(cm, 'gather_batch', two_ranks)
    images = torch.randn(8, 3, 32, 16)
    labels, modality = torch.tensor([0, 0, 1, 1] * 2), torch.tensor([0] * 4 + [1] * 4)
    out = model.loss(images, dict(label=labels, modality=modality))
    assert seen == {'id': 8, 'tri': 16}
    assert cm.CrossModalityReID.gathers_global_batch and torch.isfinite(out['loss_tri'])
