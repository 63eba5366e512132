"""LossSet (harness/models/loss_set.py): the config's losses consume a model's named inputs; parts,
modality groups, removal, the calling convention, DDP gathering; PartHeads and part-level
CrossModalityReID."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope
from torch import nn

from harness.models.heads import BNNeckHead, PartHeads
from harness.models.loss_set import LossInputs, LossSet, config_losses
from harness.registry import MODELS

INPUTS = ('feat', 'parts', 'logits')


class Recorded(nn.Module):
    """A loss that records what it was called with and returns the mean of its first input."""

    built: list[Recorded] = []

    def __init__(self, takes_labels=True, takes_modality=False, per_sample=False, correct=None):
        super().__init__()
        self.takes_labels, self.takes_modality = takes_labels, takes_modality
        self.per_sample, self.correct = per_sample, correct
        self.calls: list = []
        Recorded.built.append(self)

    def forward(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        value = args[0].float().mean()
        return value if self.correct is None else (value, torch.tensor(self.correct))


@pytest.fixture
def recorded():
    """``type='Recorded'`` for the duration of a test; yields the instances built."""
    Recorded.built = []
    MODELS.register_module(name='Recorded', module=Recorded, force=True)
    yield Recorded.built
    MODELS._module_dict.pop('Recorded', None)


def batch(n=6, c=4, p=3, seed=0) -> LossInputs:
    """Six rows in three blocks: codes 0, 0 | 1, 1 | 2, 2, identities 0, 1 in each."""
    g = torch.Generator().manual_seed(seed)
    return LossInputs(
        dict(
            feat=torch.randn(n, c, generator=g),
            parts=torch.randn(n, c, p, generator=g),
            logits=torch.randn(n, 5, generator=g),
        ),
        labels=torch.tensor([0, 1, 0, 1, 0, 1]),
        modality=torch.tensor([0, 0, 1, 1, 2, 2]),
        blocks=3,
    )


def build_set(specs, **kw) -> LossSet:
    return LossSet(specs, inputs=INPUTS, part_inputs=('parts',), **kw)


# ---------------------------------------------------------------- what the config may say


@pytest.mark.parametrize(
    'spec, message',
    [
        (dict(type='IdentityLoss'), r'input must name what the loss is computed on'),
        (dict(type='IdentityLoss', input='logit'), r"no 'logit'; expected one of"),
        (dict(type='IdentityLoss', input=['logits', 7]), r'input must name'),
        (dict(type='BatchHardTripletLoss', input='parts'), r"parts='sum' or 'mean'"),
        (dict(type='BatchHardTripletLoss', input='feat', parts='sum'), r'not part-level'),
        (dict(type='BatchHardTripletLoss', input='parts', parts='max'), r'parts must be one of'),
        (dict(type='IdentityLoss', input='logits', weight='1'), r'weight must be a number'),
        (dict(type='IdentityLoss', input='logits', modalities=[]), r'modalities must be'),
        (dict(type='IdentityLoss', input='logits', modalities=[[0, 0]]), r'distinct'),
        (dict(type='IdentityLoss', input='logits', modalities=[0, [1]]), r'modalities must be'),
        (dict(input='logits'), r'registered loss type'),
        ('IdentityLoss', r'registered loss type'),
    ],
)
def test_a_bad_spec_is_refused_naming_its_key(spec, message):
    with pytest.raises(ValueError, match=message) as err:
        build_set(dict(bad=spec))
    assert 'model.losses.bad' in str(err.value)


def test_unknown_type_empty_set_and_bad_names_are_refused():
    with pytest.raises(KeyError, match='NoSuchLoss'):
        build_set(dict(x=dict(type='NoSuchLoss', input='feat')))
    with pytest.raises(ValueError, match='is empty'):
        build_set(dict(id=None))
    with pytest.raises(ValueError, match='identifier'):
        build_set({'a b': dict(type='IdentityLoss', input='logits')})
    with pytest.raises(ValueError, match="'weights' is taken by the loss set"):
        build_set(dict(weights=dict(type='IdentityLoss', input='logits')))
    with pytest.raises(ValueError, match='dict of named losses'):
        build_set([dict(type='IdentityLoss', input='logits')])


def test_none_removes_a_loss_and_the_tables_follow_the_config():
    losses = build_set(
        dict(
            id=dict(type='IdentityLoss', input='logits', weight=0.5, label_smoothing=0.1),
            tri=None,
            hc=dict(type='HeteroCenterLoss', input='parts', parts='sum', modalities=[[0, 1]]),
        )
    )
    assert list(losses) == ['id', 'hc'] and losses.consumed == {'logits', 'parts'}
    assert losses.inputs == {'id': 'logits', 'hc': 'parts'}
    assert losses.weights == {'id': 0.5, 'hc': 1.0}
    assert losses.parts == {'hc': 'sum'} and losses.modalities == {'hc': [[0, 1]]}
    assert losses['id'].label_smoothing == 0.1


def test_default_args_reach_only_the_losses_that_take_them_and_the_config_wins():
    from methods.mmn.losses import DistributionConsistencyLoss  # noqa: F401  (registers it)

    losses = build_set(
        dict(
            id=dict(type='IdentityLoss', input='logits'),
            dcl=dict(type='DistributionConsistencyLoss', input='feat', head_dim=2),
            dcl8=dict(type='DistributionConsistencyLoss', input='feat', head_dim=2, in_dim=8),
        ),
        default_args=dict(in_dim=4),
    )
    assert losses['dcl'].fc1_weight.shape == (2, 4)
    assert losses['dcl8'].fc1_weight.shape == (2, 8)


def test_config_losses_is_a_fresh_copy_each_time():
    from methods.mmn.model import CONFIG

    first = config_losses(CONFIG)
    first['tri']['modalities'].append([9, 9])
    first['dcl']['weight'] = 5.0
    again = config_losses(CONFIG)
    assert again['tri']['modalities'] == [[0, 1], [0, 3], [2, 1], [2, 3]]
    assert again['dcl']['weight'] == 0.2


# ---------------------------------------------------------------- how the losses are computed


def test_weight_scales_the_logged_value_and_tuples_log_an_accuracy():
    b = batch()
    losses = build_set(
        dict(
            id=dict(type='IdentityLoss', input='logits', weight=0.5),
            tri=dict(type='BatchHardTripletLoss', input='feat', margin=0.3),
        )
    )
    out = losses(b)
    assert out['loss_id'].item() == pytest.approx(
        0.5 * F.cross_entropy(b.tensors['logits'], b.labels).item(), rel=1e-6
    )
    tri, correct = losses['tri'](b.tensors['feat'], b.labels)
    assert out['loss_tri'].item() == pytest.approx(tri.item(), rel=1e-6)
    assert out['acc_tri'].item() == pytest.approx(int(correct) / 6)
    assert set(out) == {'loss_id', 'loss_tri', 'acc_tri'}


def test_parts_sum_mean_and_concat():
    b = batch()
    x, y, m = b.tensors['parts'], b.labels, b.modality
    losses = build_set(
        dict(
            s=dict(type='HeteroCenterLoss', input='parts', parts='sum'),
            a=dict(type='HeteroCenterLoss', input='parts', parts='mean'),
            c=dict(type='HeteroCenterLoss', input='parts', parts='concat'),
        )
    )
    hc = losses['s']
    per_part = [hc(x[:, :, k], y, m).item() for k in range(3)]
    out = losses(b)
    assert out['loss_s'].item() == pytest.approx(sum(per_part), rel=1e-6)
    assert out['loss_a'].item() == pytest.approx(sum(per_part) / 3, rel=1e-6)
    concat = torch.cat([x[:, :, k] for k in range(3)], dim=1)  # part by part
    assert out['loss_c'].item() == pytest.approx(hc(concat, y, m).item(), rel=1e-6)
    # the concatenation is part-major: a per-part centre distance adds up over the parts
    assert out['loss_c'].item() == pytest.approx(sum(per_part), rel=1e-5)


def test_modality_groups_take_rows_code_by_code_and_average(recorded):
    b = batch()
    losses = build_set(
        dict(
            pair=dict(type='Recorded', input='feat', modalities=[2, 0], takes_modality=True),
            groups=dict(type='Recorded', input='feat', modalities=[[0, 1], [2, 1]]),
        )
    )
    out = losses(b)
    ((args, kwargs),) = recorded[0].calls
    feats, labels = args
    x = b.tensors['feat']
    assert torch.equal(feats, torch.cat([x[4:6], x[0:2]]))  # code 2's rows, then code 0's
    assert labels.tolist() == [0, 1, 0, 1] and kwargs['modality'].tolist() == [2, 2, 0, 0]
    assert out['loss_pair'].item() == pytest.approx(feats.mean().item(), rel=1e-6)
    first, second = (call[0][0] for call in recorded[1].calls)
    assert torch.equal(first, x[0:4]) and torch.equal(second, torch.cat([x[4:6], x[2:4]]))
    mean = (first.mean() + second.mean()) / 2
    assert out['loss_groups'].item() == pytest.approx(mean.item(), rel=1e-6)


def test_losses_without_labels_and_with_several_inputs(recorded):
    b = batch()
    losses = build_set(dict(kl=dict(type='Recorded', input=['logits', 'feat'], takes_labels=False)))
    losses(b)
    ((args, kwargs),) = recorded[0].calls
    assert len(args) == 2 and kwargs == {}
    assert args[0] is b.tensors['logits'] and args[1] is b.tensors['feat']
    assert losses.inputs == {'kl': ('logits', 'feat')}


def test_accuracy_counts_every_ranked_row_over_parts_and_groups(recorded):
    losses = build_set(
        dict(
            t=dict(
                type='Recorded', input='parts', parts='mean', modalities=[[0, 1], [2]], correct=3
            )
        )
    )
    out = losses(batch())
    # 3 parts x (4 + 2 rows), 3 correct per call
    assert out['acc_t'].item() == pytest.approx(3 * 2 * 3 / (3 * 6))


def test_only_batch_level_losses_see_the_gathered_batch(recorded):
    calls = []

    def two_ranks(x, blocks=2):
        calls.append(blocks)
        return torch.cat([x, x])

    losses = build_set(
        dict(
            local=dict(type='Recorded', input='feat', per_sample=True),
            a=dict(type='Recorded', input='feat', takes_modality=True),
            b=dict(type='Recorded', input='feat', modalities=[1]),
        )
    )
    losses(batch(), gather=two_ranks)
    assert len(recorded[0].calls[0][0][0]) == 6
    args, kwargs = recorded[1].calls[0]
    assert len(args[0]) == len(args[1]) == len(kwargs['modality']) == 12
    assert len(recorded[2].calls[0][0][0]) == 4  # the infrared rows of both "ranks"
    # labels, modality and 'feat' gathered once each, with the batch's block count
    assert calls == [3, 3, 3]


def test_inputs_must_have_one_row_per_sample():
    b = batch()
    b.tensors['feat'] = b.tensors['feat'][:5]
    losses = build_set(dict(t=dict(type='BatchHardTripletLoss', input='feat')))
    with pytest.raises(ValueError, match="'feat' has 5 rows for 6 labels"):
        losses(b)
    del b.tensors['feat']
    with pytest.raises(KeyError, match="no 'feat'"):
        losses(b)


# ---------------------------------------------------------------- part heads, part-level model


def test_part_heads_apply_one_head_per_part_and_keep_list_keys():
    torch.manual_seed(0)
    heads = PartHeads(dict(type='BNNeckHead'), num_parts=3, in_channels=4, num_classes=5)
    assert all(isinstance(h, BNNeckHead) for h in heads)
    assert (
        'heads' not in ''.join(heads.state_dict()) and '2.classifier.weight' in heads.state_dict()
    )
    x = torch.randn(6, 4, 3)
    bn, logits = heads.eval()(x)
    assert bn.shape == (6, 4, 3) and logits.shape == (6, 5, 3)
    for k, head in enumerate(heads):
        ref_bn, ref_logits = head(x[:, :, k])
        assert torch.equal(bn[:, :, k], ref_bn) and torch.equal(logits[:, :, k], ref_logits)
    single = PartHeads(dict(type='BNNeck', dim=4), num_parts=3)
    assert single(x).shape == (6, 4, 3)
    with pytest.raises(ValueError, match=r'\[B, C, 3\]'):
        heads(torch.randn(6, 4))
    with pytest.raises(ValueError, match='num_parts >= 1'):
        PartHeads(dict(type='BNNeck', dim=4), num_parts=0)


def test_stacked_parts_are_stored_part_by_part_and_split_back():
    from harness.models.necks.parts import split_parts, stack_parts

    parts = [torch.randn(5, 3, requires_grad=True) for _ in range(4)]
    x = stack_parts(parts)
    assert x.shape == (5, 3, 4) and all(x[:, :, k].is_contiguous() for k in range(4))
    back = split_parts(x)
    assert all(torch.equal(a, b) and b.is_contiguous() for a, b in zip(parts, back))
    sum(p.sum() * (k + 1) for k, p in enumerate(back)).backward()
    assert all(p.grad.is_contiguous() and torch.all(p.grad == k + 1) for k, p in enumerate(parts))
    loose = torch.randn(5, 3, 4)  # a part pooling's layout: split copies each part contiguously
    assert all(
        torch.equal(p, loose[:, :, k]) and p.is_contiguous()
        for k, p in enumerate(split_parts(loose))
    )


def _part_model(**over):
    cfg = dict(
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
        neck=dict(type='HorizontalPartPooling', num_parts=2, split='chunk'),
        head=dict(type='PartHeads', head=dict(type='BNNeckHead')),
        losses=dict(
            id=dict(type='IdentityLoss', input='logits', parts='mean'),
            tri=dict(type='BatchHardTripletLoss', input='pool', parts='concat'),
        ),
    )
    cfg.update(over)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('harness'):
        return MODELS.build(cfg)


def test_the_generic_model_composes_part_pooling_and_part_heads():
    """A PCB-style model by config: stripes, one BNNeck head per stripe, part-level losses."""
    model = _part_model()
    images = torch.randn(8, 3, 64, 32)
    labels, modality = torch.tensor([0, 0, 1, 1] * 2), torch.tensor([0] * 4 + [1] * 4)
    out = model.train().loss(images, dict(label=labels, modality=modality))
    assert {'loss_id', 'loss_tri', 'acc_tri', 'acc_id'} == set(out)
    feats = model.forward_features(images, modality)
    assert feats['pool'].shape == (8, 128, 2) and feats['logits'].shape == (8, 4, 2)
    sum(v for k, v in out.items() if k.startswith('loss')).backward()
    assert model.head[1].classifier.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        test = model.extract_feat(images[:3], 0)
        bn = model.forward_features(images[:3], 0)['bn']
    assert test.shape == (3, 256)
    ref = F.normalize(torch.cat([bn[:, :, 0], bn[:, :, 1]], dim=1), dim=1)
    torch.testing.assert_close(test, ref)


def test_part_pooling_needs_part_heads_and_part_losses():
    with pytest.raises(ValueError, match="type='PartHeads'"):
        _part_model(head=dict(type='BNNeckHead'))
    with pytest.raises(ValueError, match="type='PartHeads'"):
        _part_model(neck=dict(type='GlobalAveragePooling'))
    with pytest.raises(ValueError, match=r"model.losses.id: input 'logits' has one feature per"):
        _part_model(losses=dict(id=dict(type='IdentityLoss', input='logits')))


# ---------------------------------------------------------------- real process groups (gloo)

N, D, P, BLOCK_CODES = 8, 6, 2, (0, 2, 1, 3)  # MMN's row blocks [V | M_V | I | M_I]


def _mmn_like_set() -> LossSet:
    from methods.mmn.losses import DistributionConsistencyLoss  # noqa: F401  (registers it)

    return LossSet(
        dict(
            id=dict(type='IdentityLoss', input='logits', parts='mean'),
            tri=dict(
                type='BatchHardTripletLoss',
                input='x',
                parts='mean',
                modalities=[[0, 1], [0, 3], [2, 1], [2, 3]],
            ),
            dcl=dict(
                type='DistributionConsistencyLoss', input='x', parts='mean', modalities=[2, 3]
            ),
            hc=dict(type='HeteroCenterLoss', input='x', parts='sum', pairs=[(0, 1), (2, 3)]),
        ),
        inputs=('x', 'logits'),
        part_inputs=('x', 'logits'),
        default_args=dict(in_dim=D, head_dim=4),
    )


def _share(rank: int, world_size: int) -> LossInputs:
    """Rank ``rank``'s share of a global batch of four aligned blocks of N rows."""
    g = torch.Generator().manual_seed(5)
    x, logits = torch.randn(4 * N, D, P, generator=g), torch.randn(4 * N, 5, P, generator=g)
    labels = torch.arange(N // 2).repeat_interleave(2).repeat(4)
    modality = torch.tensor(BLOCK_CODES).repeat_interleave(N)
    per = N // world_size
    rows = torch.cat([torch.arange(b * N + rank * per, b * N + (rank + 1) * per) for b in range(4)])
    return LossInputs(
        dict(x=x[rows].clone().requires_grad_(), logits=logits[rows]),
        labels=labels[rows],
        modality=modality[rows],
        blocks=4,
    )


def _loss_set_rank(rank: int, world_size: int, init_file: str, out: str) -> None:
    import traceback
    from pathlib import Path

    import torch.distributed as dist

    try:
        torch.set_num_threads(1)
        dist.init_process_group(
            'gloo', init_method=f'file://{init_file}', rank=rank, world_size=world_size
        )
        try:
            inputs = _share(rank, world_size)
            values = _mmn_like_set()(inputs)
            batch_level = values['loss_tri'] + values['loss_dcl'] + values['loss_hc']
            batch_level.backward()
            result = dict(
                values={k: v.detach() for k, v in values.items()},
                grad=inputs.tensors['x'].grad / world_size,  # as DDP averages it
            )
        finally:
            dist.destroy_process_group()
        torch.save(result, f'{out}/rank{rank}.pt')
    except BaseException:
        Path(f'{out}/rank{rank}.err').write_text(traceback.format_exc())
        raise


def test_modality_groups_select_the_global_rows_in_a_gloo_group(tmp_path):
    """Two processes, each with its share of every block: the batch-level losses (triplet over
    pairings, DCL on aligned rows, HC by pairs) equal one process's, and so do the gradients."""
    import multiprocessing as mp

    world_size = 2
    ctx = mp.get_context('fork')
    args = (world_size, str(tmp_path / 'pg'), str(tmp_path))
    procs = [ctx.Process(target=_loss_set_rank, args=(r, *args)) for r in range(world_size)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        if p.is_alive():
            p.kill()
    errors = [e.read_text() for e in tmp_path.glob('rank*.err')]
    assert not errors and all(p.exitcode == 0 for p in procs), '\n'.join(errors)
    one = _share(0, 1)
    reference = _mmn_like_set()(one)
    (reference['loss_tri'] + reference['loss_dcl'] + reference['loss_hc']).backward()
    per = N // world_size
    for rank in range(world_size):
        got = torch.load(tmp_path / f'rank{rank}.pt', weights_only=False)
        for key in ('loss_tri', 'loss_dcl', 'loss_hc', 'acc_tri'):
            torch.testing.assert_close(got['values'][key], reference[key].detach())
        rows = torch.cat(
            [torch.arange(b * N + rank * per, b * N + (rank + 1) * per) for b in range(4)]
        )
        torch.testing.assert_close(got['grad'], one.tensors['x'].grad[rows], rtol=1e-5, atol=1e-7)
