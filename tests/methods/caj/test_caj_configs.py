"""CAJ's configs: AGW's composition with CAJ's parts, the train_ext.py recipe (sampler, 96-image
batch, schedule), and the channel-augmented batch as the engine's loader builds it."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from harness.data.samplers import CrossModalityIdentitySampler
from harness.engine.config import load_config
from harness.engine.run import _dataloader
from harness.registry import DATA_SAMPLERS, DATASETS, FUNCTIONS, PARAM_SCHEDULERS
from methods.caj import METHOD
from methods.caj.model import CAJ

AGW_SYSU = Path(__file__).parents[3] / 'methods' / 'agw' / 'configs' / 'agw_sysu.py'


@pytest.fixture(scope='module')
def cfgs():
    return {p.stem: load_config(p) for p in METHOD.config_files()}


def test_method_spec_lists_the_configs_and_converter(cfgs):
    assert set(cfgs) == {
        f'caj_{kind}{ds}' for kind in ('', 'demo_') for ds in ('sysu', 'regdb', 'llcm')
    }
    assert callable(METHOD.load_converter()) and METHOD.aliases == ('CAJ',)
    assert 'mangye16/Cross-Modal-Re-ID-baseline@e817a26' in METHOD.code


@pytest.mark.parametrize('name,dataset', [('caj_sysu', 'sysu'), ('caj_regdb', 'regdb')])
def test_full_configs_follow_train_ext_py(cfgs, name, dataset):
    cfg, agw = cfgs[name], load_config(AGW_SYSU)
    assert cfg.protocol['dataset'] == dataset
    assert cfg.entry == dict(method='caj', kind='full', label='CAJ')
    # the model is AGW's embed_net; only the triplet loss and the test feature differ
    own = ('losses', 'test_flip')
    assert {k: v for k, v in cfg.model.items() if k not in own} == {
        k: v for k, v in agw.model.items() if k not in own
    }
    assert cfg.model['losses'] == dict(
        id=dict(type='IdentityLoss', input='logits', weight=1.0),
        tri=dict(type='TripletLossADP', input='pool', weight=1.0, alpha=1.0, gamma=1.0, square=1),
    )
    assert cfg.model['test_flip'] == 'renormalised-mean' and cfg.model['test_feature'] == 'bn'
    assert tuple(cfg.input_size) == (288, 144) and cfg.resize_filter == 'lanczos'
    assert cfg.train_pipeline == [
        dict(type='Pad', padding=10, fill=0),
        dict(type='RandomCrop'),
        dict(type='RandomHorizontalFlip', p=0.5),
        dict(type='Normalize'),
        dict(type='ChannelRandomErasing', p=0.5),
    ]
    assert cfg.train_views == dict(
        visible=[[], [dict(type='ChannelExchange', gray=2)]],
        infrared=[[dict(type='ChannelAdapGray', p=0.5)]],
    )
    assert (cfg.sampler['num_ids'], cfg.sampler['num_instances']) == (8, 4)
    assert cfg.train_dataloader['batch_size'] == 64  # sampled images; 96 with the second view
    opt = cfg.optim_wrapper['optimizer']
    assert (opt['type'], opt['lr'], opt['momentum'], opt['weight_decay'], opt['nesterov']) == (
        'SGD',
        0.1,
        0.9,
        5e-4,
        True,
    )
    assert cfg.optim_wrapper['paramwise_cfg'] == dict(
        custom_keys={'backbone': dict(lr_mult=0.1), 'non_local': dict(lr_mult=0.1)}
    )
    assert cfg.train_cfg['max_epochs'] == 100 and not cfg.amp['enabled']
    assert cfg.test['distance'] == 'cosine'


def official_head_lr(epoch: int, lr: float = 0.1) -> float:
    """train_ext.py adjust_learning_rate (lines 252-267), the bottleneck/classifier groups."""
    if epoch < 10:
        return lr * (epoch + 1) / 10
    if epoch < 20:
        return lr
    if epoch < 50:
        return lr * 0.1
    return lr * 0.01


def test_learning_rates_per_epoch(cfgs):
    cfg = cfgs['caj_sysu']
    model = CAJ(num_classes=5, backbone=dict(pretrained=False, blocks=(1, 1, 1, 1)))
    with DefaultScope.overwrite_default_scope('harness'):
        wrapper = build_optim_wrapper(model, dict(cfg.optim_wrapper, type='OptimWrapper'))
        (sched,) = [
            PARAM_SCHEDULERS.build(dict(s, optimizer=wrapper.optimizer))
            for s in cfg.param_scheduler
        ]
    group_of = {id(p): g for g in wrapper.optimizer.param_groups for p in g['params']}
    head = group_of[id(model.head.classifier.weight)]
    trunk = group_of[id(model.backbone.shared.layer4[0].conv1.weight)]
    non_local = group_of[id(model.non_local['layer3'][0].theta.weight)]
    expected = {0: 0.01, 9: 0.1, 10: 0.1, 19: 0.1, 20: 0.01, 49: 0.01, 50: 0.001, 99: 0.001}
    seen = {}
    for epoch in range(cfg.train_cfg['max_epochs']):
        assert head['lr'] == pytest.approx(official_head_lr(epoch), rel=1e-12)
        assert trunk['lr'] == non_local['lr'] == pytest.approx(0.1 * head['lr'], rel=1e-12)
        seen[epoch] = head['lr']
        wrapper.optimizer.step()
        sched.step()
    assert {e: seen[e] for e in expected} == pytest.approx(expected, rel=1e-12)


def test_demo_configs_keep_the_parts_at_toy_size(cfgs):
    for name, dataset in (('caj_demo_sysu', 'sysu'), ('caj_demo_regdb', 'regdb')):
        cfg, full = cfgs[name], cfgs['caj_sysu']
        assert cfg.entry['kind'] == 'demo' and cfg.protocol['dataset'] == dataset
        assert cfg.model['losses'] == full.model['losses']
        assert cfg.model['test_flip'] == full.model['test_flip']
        assert cfg.train_views == full.train_views
        assert [t['type'] for t in cfg.train_pipeline] == [t['type'] for t in full.train_pipeline]
        assert cfg.model['backbone']['pretrained'] is False
        assert cfg.train_dataloader['batch_size'] == 64


# Released training-set sizes (visible, infrared): SYSU-MM01 train+val ids (AGW/CAJ
# pre_process_sysu.py), RegDB one split (206 ids x 10 images per modality).
RELEASED_SIZES = {'sysu': (22258, 11909), 'regdb': (2060, 2060)}


@pytest.mark.parametrize('dataset,batches', [('sysu', 696), ('regdb', 65)])
def test_batches_per_epoch_at_released_size(dataset, batches):
    vis, ir = RELEASED_SIZES[dataset]
    labels = np.concatenate([np.arange(vis) % 206, np.arange(ir) % 206])
    modalities = np.concatenate([np.zeros(vis, int), np.ones(ir, int)])
    sampler = CrossModalityIdentitySampler(
        SimpleNamespace(labels=labels, modalities=modalities),
        num_ids=8,
        num_instances=4,
        rank=0,
        world_size=1,
    )
    assert sampler.num_batches == batches  # floor(N / 32) + 1, N = max(#visible, #infrared)


def test_engine_loader_gives_the_96_image_batch(cfgs, regdb_root):
    cfg = cfgs['caj_demo_regdb'].copy()
    cfg.data_root = str(regdb_root)
    loader = _dataloader(cfg, train=True)
    assert loader['collate_fn'] == dict(type='harness.collate_views')
    assert loader['dataset']['views'] == cfg.train_views and loader['batch_size'] == 64
    with DefaultScope.overwrite_default_scope('harness'):
        dataset = DATASETS.build(loader['dataset'])
        sampler = DATA_SAMPLERS.build(dict(loader['sampler'], dataset=dataset))
        collate = FUNCTIONS.get('harness.collate_views')
    indices = list(iter(sampler))[:64]
    torch.manual_seed(0)
    batch = collate([dataset[i] for i in indices])
    images, samples = batch['inputs'], batch['data_samples']
    assert images.shape == (96, 3, 64, 32) and images.dtype == torch.float32  # normalised
    l1 = torch.as_tensor(dataset.labels[indices[:32]])
    l2 = torch.as_tensor(dataset.labels[indices[32:]])
    assert torch.equal(samples['label'], torch.cat([l1, l1, l2]))
    assert torch.equal(l1, l2)  # slot i of both modalities: the same identity
    assert samples['modality'].tolist() == [0] * 64 + [1] * 32
    assert samples['view'].tolist() == [0] * 32 + [1] * 32 + [0] * 32
    assert torch.equal(samples['index'][:32], samples['index'][32:64])
    equal_channels = (images[:, 0] == images[:, 1]).flatten(1).all(1) & (
        images[:, 1] == images[:, 2]
    ).flatten(1).all(1)
    assert equal_channels[32:64].all()  # ChannelExchange(gray=2) always copies one channel
    assert equal_channels[64:].float().mean() > 0.6  # ChannelAdapGray: 7/8 of the time
    assert equal_channels[:32].float().mean() < 0.2  # view 0: colour kept
    # the two views of one image are drawn independently (crop, flip, erasing)
    assert not torch.equal(images[:32], images[32:64])
    # the data preprocessor takes normalised batches as they are
    from methods.caj.model import CAJ as build

    model = build(
        num_classes=dataset.num_classes,
        backbone=dict(pretrained=False, blocks=(1, 1, 1, 1), base_channels=8),
    )
    data = model.data_preprocessor(batch, True)
    assert torch.equal(data['inputs'], images)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert set(losses) == {'loss_id', 'loss_tri', 'acc_tri', 'acc_id'}
    assert all(torch.isfinite(v) for v in losses.values())


def test_agw_loader_is_unchanged(regdb_root):
    cfg = load_config(AGW_SYSU.with_name('agw_demo_regdb.py'), {'data_root': str(regdb_root)})
    loader = _dataloader(cfg, train=True)
    assert loader['collate_fn'] == dict(type='default_collate') and 'views' not in loader['dataset']
