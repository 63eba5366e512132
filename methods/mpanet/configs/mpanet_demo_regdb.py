# CPU demo of MPANet on a (synthetic) RegDB: the architecture and losses of
# mpanet_regdb.py, scaled down: one block per ResNet stage, random init (no ImageNet weights, so a
# larger Adam step, no lr decay), 64x32 input, 4 ids x (2 + 2) per batch, 6 epochs.
_base_ = ['./mpanet_regdb.py']
entry = dict(method='mpanet', kind='demo', label='MPANet (demo)')

model = dict(backbone=dict(pretrained=False, blocks=(1, 1, 1, 1)))
input_size = (64, 32)
train_pipeline = [  # the full pipeline without random erasing (a few-epoch run from scratch)
    dict(type='RandomHorizontalFlip', p=0.5),
    dict(type='Pad', padding=4, fill=127),
    dict(type='RandomCrop'),
]
sampler = dict(type='MPANetIdentitySampler', num_ids=4, num_instances=2)
train_dataloader = dict(batch_size=16, num_workers=0)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = []
train_cfg = dict(max_epochs=4)
