"""MPANet's losses are its config's ``model.losses``: the official set gives exactly the values of
the hard-coded losses it replaced, and a config edit removes, swaps or reweights one, as the logged
``loss_<name>`` keys show."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.engine.config import load_config
from harness.models.losses import BatchHardTripletLoss

CONFIGS = Path(__file__).parents[3] / 'methods' / 'mpanet' / 'configs'
SMALL_TRUNK = dict(pretrained=False, blocks=(1, 1, 1, 1), base_channels=8)
BATCH = dict(num_ids=3, k=2, size=(64, 32), seed=3)  # the full configs' cases
ORDER = ['pattern', 'center_cluster', 'id', 'id_visible', 'id_infrared', 'kl']

# ``model.loss(...)`` on main @ a847274, where MPANet hard-coded its losses (``*_weight`` and
# ``center_margin`` arguments), for the seeded models and batches of the tests below. Recorded on
# an x86 CPU, one thread; the branch reproduced every value bit for bit there. Other CPUs may round
# the convolutions differently, hence the tolerance.
MAIN = {
    'demo': dict(
        loss_pattern=1.0852121114730835,
        loss_center_cluster=3.5340383052825928,
        loss_id=1.918635368347168,
        loss_id_visible=2.1283657550811768,
        loss_id_infrared=1.5871540307998657,
        loss_kl=0.47096043825149536,
        acc_id=0.1666666716337204,
    ),
    'full': dict(
        loss_pattern=1.0790139436721802,
        loss_center_cluster=3.347829818725586,
        loss_id=2.05505108833313,
        loss_id_visible=2.0205795764923096,
        loss_id_infrared=1.5339536666870117,
        loss_kl=0.7162587642669678,
        acc_id=0.0833333358168602,
    ),
    # main: MPANet(..., pattern_weight=0.3, center_cluster_weight=2.0, center_margin=0.5,
    # id_weight=0.9, modality_id_weight=0.5, kl_weight=1.5); here: the config edit
    'edited': dict(
        loss_pattern=0.6474083662033081,
        loss_center_cluster=6.695659637451172,
        loss_id=1.849545955657959,
        loss_id_visible=1.0102897882461548,
        loss_id_infrared=0.7669768333435059,
        loss_kl=0.42975524067878723,
        acc_id=0.0833333358168602,
    ),
}
EDIT = """model = dict(losses=dict(
    pattern=dict(weight=0.3), center_cluster=dict(weight=2.0, margin=0.5), id=dict(weight=0.9),
    id_visible=dict(weight=0.5), id_infrared=dict(weight=0.5), kl=dict(weight=1.5)))"""


def distinct_teachers_at_epoch_130(model) -> None:
    """Teachers unlike their students, so a wrong (uncrossed) pairing would change the KL."""
    with torch.no_grad():
        model.mean_classifier_visible.weight.normal_(0, 0.01)
        model.mean_classifier_infrared.weight.normal_(0, 0.01)
    model.set_epoch(130)


def full_small(cfg) -> dict:
    """The full config's model (its loss set) on a one-block, eighth-width trunk."""
    return dict(cfg.model.to_dict(), backbone=dict(cfg.model.backbone, **SMALL_TRUNK))


def logged(out: dict) -> dict[str, float]:
    return {k: v.item() for k, v in out.items() if k.startswith('loss') or k == 'acc_id'}


def test_the_demo_config_gives_mains_values(train_losses):
    cfg = load_config(CONFIGS / 'mpanet_demo_sysu.py')
    _, out = train_losses(
        cfg.model.to_dict(),
        prepare=distinct_teachers_at_epoch_130,
        num_ids=3,
        k=4,
        size=tuple(cfg.input_size),
        seed=1,
    )
    assert logged(out) == pytest.approx(MAIN['demo'], rel=1e-5)
    assert [k for k in out if k.startswith('loss')] == [f'loss_{n}' for n in ORDER]


@pytest.mark.parametrize('name', ['mpanet_sysu.py', 'mpanet_regdb.py'])
def test_the_full_configs_declare_the_official_losses_and_give_mains_values(name, train_losses):
    cfg = load_config(CONFIGS / name)
    losses = cfg.model['losses']
    assert list(losses) == ORDER  # the official order, which mmengine sums in
    assert losses['kl']['input'] == ['modality_logits', 'teacher_logits']
    assert (losses['id_visible']['modalities'], losses['id_infrared']['modalities']) == ([0], [1])
    _, out = train_losses(full_small(cfg), **BATCH)
    assert logged(out) == pytest.approx(MAIN['full'], rel=1e-5)


def test_a_config_edit_reweights_every_loss(derived_config, train_losses):
    cfg = derived_config(CONFIGS / 'mpanet_sysu.py', EDIT)
    model, out = train_losses(full_small(cfg), **BATCH)
    assert model.losses['center_cluster'].margin == 0.5
    assert logged(out) == pytest.approx(MAIN['edited'], rel=1e-5)


def test_removing_the_mutual_learning_by_config(derived_config, train_losses):
    cfg = derived_config(CONFIGS / 'mpanet_sysu.py', 'model = dict(losses=dict(kl=None))')
    model, out = train_losses(full_small(cfg), **BATCH)
    assert 'kl' not in model.losses and 'loss_kl' not in out
    expected = {k: v for k, v in MAIN['full'].items() if k != 'loss_kl'}
    assert logged(out) == pytest.approx(expected, rel=1e-5)


def test_swapping_the_centre_cluster_loss_for_a_triplet_by_config(
    derived_config, train_losses, batch
):
    swap = (
        'model = dict(losses=dict(center_cluster=None, '
        "tri=dict(type='BatchHardTripletLoss', input='pool', margin=0.3)))"
    )
    cfg = derived_config(CONFIGS / 'mpanet_sysu.py', swap)
    model, out = train_losses(full_small(cfg), **BATCH)
    assert isinstance(model.losses['tri'], BatchHardTripletLoss)
    assert 'loss_center_cluster' not in out and {'loss_tri', 'acc_tri'} <= set(out)
    images, samples = batch(**BATCH)
    feats, _ = model.embed(images)  # training mode: the same features as in the loss
    expected = BatchHardTripletLoss(0.3)(feats, samples['label'])[0]
    assert out['loss_tri'].item() == pytest.approx(expected.item(), rel=1e-5)
