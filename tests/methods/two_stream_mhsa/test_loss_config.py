"""The two-stream MHSA's losses are its config's ``model.losses``: every shipped config (the
ablation grid included) gives exactly the values of the string-picked losses it replaced, and the
former options (HcTri, an added triplet, label smoothing, other HC pairs) are config edits that
give their old values, as the logged ``loss_<name>`` keys show."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.engine.config import load_config
from harness.models.losses import HeteroCenterTripletLoss

CONFIGS = Path(__file__).parents[3] / 'methods' / 'two_stream_mhsa' / 'configs'
SIZE = (96, 48)  # layer4 map 6 x 3: one row per part
BATCH = dict(num_ids=3, k=2, size=SIZE, seed=2)

# ``model.loss(...)`` on main @ a847274, where the model picked its losses by string
# (``center_loss``, ``add_triplet``, ``hc_*``, ``label_smooth``), for every SYSU config at demo
# scale (``small``) and for former options. Recorded on an x86 CPU, one thread; the branch
# reproduced every value bit for bit there. Other CPUs may round the convolutions differently,
# hence the tolerance.
MAIN = {
    'tsmhsa_sysu': dict(loss_id=9.656024932861328, loss_hc=29.911333084106445),
    'tsmhsa_sysu_b0': dict(loss_id=1.6115942001342773),
    'tsmhsa_sysu_b1': dict(loss_id=1.6131149530410767),
    'tsmhsa_sysu_b2': dict(loss_id=9.665637969970703),
    'tsmhsa_sysu_b3': dict(loss_id=9.665637969970703, loss_hc=9.661850929260254),
    'tsmhsa_sysu_b4': dict(loss_id=9.668538093566895),
    'tsmhsa_sysu_b5': dict(loss_id=9.668538093566895, loss_hc=8.394438743591309),
    'tsmhsa_sysu_b6': dict(loss_id=9.656024932861328, loss_hc=29.911333084106445),
    'tsmhsa_sysu_hctri_recipe': dict(loss_id=9.656024932861328, loss_hc=14.955666542053223),
    'tsmhsa_sysu_no_aux': dict(loss_id=9.668538093566895, loss_hc=8.394438743591309),
    'tsmhsa_sysu_no_hc': dict(loss_id=9.656024932861328),
    'tsmhsa_sysu_no_mhsa': dict(loss_id=9.657365798950195, loss_hc=30.77655792236328),
    'tsmhsa_sysu_no_parts': dict(loss_id=1.6119065284729004, loss_hc=5.0636067390441895),
    # main: center_loss='hctri', hctri_weight=2.0, hctri_margin=0.25 (one loss_hctri = the sum)
    'hctri': dict(loss_id=9.656024932861328, loss_hctri=68.21332550048828),
    # main: add_triplet=True, label_smooth=0.1, triplet_margin=0.4
    'triplet': dict(
        loss_id=9.656147003173828, loss_hc=29.911333084106445, loss_tri=0.9011939167976379
    ),
    # main: hc_pairs=['VI'], hc_reduction='mean', hc_margin=0.2, hc_weight=0.7
    'hc_vi_mean': dict(loss_id=9.656024932861328, loss_hc=3.413116693496704),
}
EDITS = {
    'hctri': """model = dict(losses=dict(
        hc=None,
        hctri=dict(type='HeteroCenterTripletLoss', input='emb', parts='concat', margin=0.25),
        hctri_parts=dict(type='HeteroCenterTripletLoss', input='emb', parts='sum', margin=0.25,
                         weight=2.0)))""",
    'triplet': """model = dict(losses=dict(
        id=dict(label_smoothing=0.1),
        tri=dict(type='BatchHardTripletLoss', input='emb_l2', parts='concat', margin=0.4)))""",
    'hc_vi_mean': """model = dict(losses=dict(
        hc=dict(pairs=[(0, 1)], reduction='mean', margin=0.2, weight=0.7)))""",
}


def small(cfg) -> dict:
    """A config's model at demo scale: 96 x 48 input, one block per stage, eighth width."""
    m = dict(cfg.model.to_dict(), input_size=SIZE, mhsa_dim_head=16)
    m['backbone'] = dict(m['backbone'], pretrained=False, blocks=(1, 1, 1, 1), base_channels=8)
    return m


def loss_values(out: dict) -> dict[str, float]:
    return {k: v.item() for k, v in out.items() if k.startswith('loss')}


@pytest.mark.parametrize('name', sorted(k for k in MAIN if k.startswith('tsmhsa')))
def test_every_sysu_config_gives_mains_values(name, train_losses):
    cfg = load_config(CONFIGS / f'{name}.py')
    _, out = train_losses(small(cfg), num_classes=5, **BATCH)
    assert loss_values(out) == pytest.approx(MAIN[name], rel=1e-5)


def test_the_full_config_declares_the_default_losses():
    losses = load_config(CONFIGS / 'tsmhsa_sysu.py').model['losses']
    assert list(losses) == ['id', 'hc']
    assert (losses['id']['parts'], losses['hc']['parts'], losses['hc']['input']) == (
        'sum',
        'sum',
        'emb_l2',
    )
    assert [tuple(p) for p in losses['hc']['pairs']] == [(0, 1), (2, 1), (0, 2)]  # VI, AI, VA


@pytest.mark.parametrize('edit', sorted(EDITS))
def test_former_options_are_config_edits_with_their_old_values(edit, derived_config, train_losses):
    cfg = derived_config(CONFIGS / 'tsmhsa_sysu.py', EDITS[edit])
    model, out = train_losses(small(cfg), num_classes=5, **BATCH)
    values = loss_values(out)
    if edit == 'hctri':  # HcTri on the concatenation + 2 x on each part, now logged apart
        assert isinstance(model.losses['hctri_parts'], HeteroCenterTripletLoss)
        assert 'loss_hc' not in values
        values['loss_hctri'] += values.pop('loss_hctri_parts')
    assert values == pytest.approx(MAIN[edit], rel=1e-5)


def test_removing_the_hc_loss_by_config_on_the_demo(derived_config, train_losses):
    base, edited = CONFIGS / 'tsmhsa_demo_sysu.py', 'model = dict(losses=dict(hc=None))'
    for cfg, keys in (
        (load_config(base), {'loss_id', 'loss_hc'}),
        (derived_config(base, edited), {'loss_id'}),
    ):
        model_cfg = dict(cfg.model.to_dict(), input_size=SIZE)
        _, out = train_losses(model_cfg, num_classes=5, **BATCH)
        assert {k for k in out if k.startswith('loss')} == keys
