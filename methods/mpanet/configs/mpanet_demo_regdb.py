# CPU demo of MPANet on a (synthetic) RegDB: the architecture and losses of mpanet_regdb.py,
# scaled down (one block per ResNet stage, random init, small input, few epochs).
_base_ = ['./mpanet_regdb.py']
entry = dict(method='mpanet', kind='demo', label='MPANet (demo)')

model = dict(backbone=dict(pretrained=False, blocks=(1, 1, 1, 1)))
input_size = (64, 32)
train_pipeline = [  # lighter than the full pipeline: 64x32 images, a few epochs
    dict(type='RandomHorizontalFlip', p=0.5),
    dict(type='Pad', padding=4, fill=127),
    dict(type='RandomCrop'),
]
sampler = dict(type='MPANetIdentitySampler', num_ids=6, num_instances=2)
train_dataloader = dict(batch_size=24, num_workers=0)
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, begin=0, milestones=[4], gamma=0.1)]
train_cfg = dict(max_epochs=5)
test = dict(distance='euclidean', batch_size=64)
