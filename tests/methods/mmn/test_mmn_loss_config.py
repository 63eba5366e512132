"""MMN's losses are its config's ``model.losses``: the official set gives exactly the values of the
hard-coded losses it replaced, and a config edit removes, swaps or changes one, as the logged
``loss_<name>`` keys show."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.engine.config import load_config
from harness.models.losses import WeightedRegularizedTriplet

CONFIGS = Path(__file__).parents[3] / 'methods' / 'mmn' / 'configs'
SMALL_TRUNK = dict(pretrained=False, blocks=(1, 1, 1, 1), base_channels=8)
PAIRINGS = [[0, 1], [0, 3], [2, 1], [2, 3]]  # (VIS, IR), (VIS, M_ir), (M_vis, IR), (M_vis, M_ir)
BATCH = dict(num_ids=3, k=2, size=(64, 32), seed=3)  # the full configs' cases

# ``model.loss(...)`` on main @ a847274, where MMN hard-coded its losses (``triplet_margin``,
# ``dcl_delta``, ``dcl_head_seed`` arguments), for the seeded models and batches of the tests
# below. Recorded on an x86 CPU, one thread; the branch reproduced every value bit for bit there.
# Other CPUs may round the convolutions differently, hence the tolerance.
MAIN = {
    'demo': dict(
        loss_id=1.7922992706298828,
        loss_tri=6.68785285949707,
        loss_dcl=0.2898299992084503,
        acc_id=0.2291666716337204,
    ),
    'full': dict(
        loss_id=1.7926278114318848,
        loss_tri=5.419620513916016,
        loss_dcl=0.29610952734947205,
        acc_id=0.2083333283662796,
    ),
    # main: MMN(..., triplet_margin=0.5, dcl_delta=0.7, dcl_head_seed=3); here: the config edit
    'edited': dict(
        loss_id=1.7926278114318848,
        loss_tri=5.619306564331055,
        loss_dcl=1.0443356037139893,
        acc_id=0.2083333283662796,
    ),
}
EDIT = 'model = dict(losses=dict(tri=dict(margin=0.5), dcl=dict(weight=0.7, seed=3)))'


def full_small(cfg) -> dict:
    """The full config's model (its loss set) on a one-block, eighth-width trunk."""
    return dict(cfg.model.to_dict(), backbone=dict(cfg.model.backbone, **SMALL_TRUNK))


def logged(out: dict) -> dict[str, float]:
    return {k: v.item() for k, v in out.items() if k.startswith('loss') or k == 'acc_id'}


def test_the_demo_config_gives_mains_values(train_losses):
    cfg = load_config(CONFIGS / 'mmn_demo_sysu.py')
    _, out = train_losses(cfg.model.to_dict(), num_ids=3, k=4, size=tuple(cfg.input_size), seed=1)
    assert logged(out) == pytest.approx(MAIN['demo'], rel=1e-5)


@pytest.mark.parametrize('name', ['mmn_sysu.py', 'mmn_regdb.py'])
def test_the_full_configs_declare_the_official_losses_and_give_mains_values(name, train_losses):
    cfg = load_config(CONFIGS / name)
    losses = cfg.model['losses']
    assert list(losses) == ['id', 'tri', 'dcl']
    assert losses['tri']['modalities'] == PAIRINGS and losses['dcl']['modalities'] == [2, 3]
    _, out = train_losses(full_small(cfg), **BATCH)
    assert logged(out) == pytest.approx(MAIN['full'], rel=1e-5)


def test_a_config_edit_changes_a_margin_a_weight_and_the_dcl_seed(derived_config, train_losses):
    cfg = derived_config(CONFIGS / 'mmn_sysu.py', EDIT)
    model, out = train_losses(full_small(cfg), **BATCH)
    assert model.losses['tri'].margin == 0.5 and model.losses.weights['dcl'] == 0.7
    assert logged(out) == pytest.approx(MAIN['edited'], rel=1e-5)


def test_removing_the_dcl_by_config(derived_config, train_losses):
    cfg = derived_config(CONFIGS / 'mmn_sysu.py', 'model = dict(losses=dict(dcl=None))')
    model, out = train_losses(full_small(cfg), **BATCH)
    assert 'dcl' not in model.losses
    assert {k for k in out if k.startswith('loss')} == {'loss_id', 'loss_tri'}
    expected = {k: v for k, v in MAIN['full'].items() if k != 'loss_dcl'}
    assert logged(out) == pytest.approx(expected, rel=1e-5)


def test_swapping_the_triplet_by_config(derived_config, train_losses, batch):
    """ "MMN with another triplet": the weighted regularised triplet on the same pairings, computed
    here from the stripe features by the official chunk layout."""
    swap = (
        "model = dict(losses=dict(tri=dict(_delete_=True, type='WeightedRegularizedTriplet', "
        f"input='pool', parts='mean', modalities={PAIRINGS})))"
    )
    cfg = derived_config(CONFIGS / 'mmn_sysu.py', swap)
    model, out = train_losses(full_small(cfg), **BATCH)
    assert isinstance(model.losses['tri'], WeightedRegularizedTriplet)
    assert out['loss_tri'].item() != pytest.approx(MAIN['full']['loss_tri'], rel=1e-3)
    # The same forward again (the BN statistics change, the features do not depend on them in
    # training mode), then the loss by hand: per stripe, the mean over the four pairings.
    outputs = model.training_outputs(*batch(**BATCH))
    wrt, expected = WeightedRegularizedTriplet(), 0.0
    for stripe in outputs.tensors['pool'].unbind(2):
        vis, m_vis, ir, m_ir = stripe.chunk(4)
        labels = outputs.labels[: len(vis)].repeat(2)
        for a, b in ((vis, ir), (vis, m_ir), (m_vis, ir), (m_vis, m_ir)):
            expected += wrt(torch.cat([a, b]), labels)[0].item() / 16
    assert out['loss_tri'].item() == pytest.approx(expected, rel=1e-5)
    assert {'loss_id', 'loss_tri', 'loss_dcl', 'acc_tri'} <= set(out)
