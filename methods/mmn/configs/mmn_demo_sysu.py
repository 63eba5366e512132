# CPU demo of MMN on the synthetic SYSU-MM01: the architecture and losses of mmn_sysu.py (MMG,
# modality stems, shared trunk, 4 stripes with BNNecks; ID + triplet + DCL) scaled to 2 CPU cores:
# one bottleneck per stage at a quarter of the width (base_channels=16), random init, 64 x 32 input
# (layer4 map 4 x 2: one row per stripe). See ../README.md for the measured figures.
_base_ = ['./mmn_sysu.py']
entry = dict(method='mmn', kind='demo', label='MMN (demo)')
model = dict(backbone=dict(pretrained=False, blocks=(1, 1, 1, 1), base_channels=16))
input_size = (64, 32)
# bilinear: the demo's margins were measured with it; the full recipe keeps lanczos
resize_filter = 'bilinear'
train_pipeline = [  # the official pipeline, padding scaled to the input size
    dict(type='Pad', padding=4, fill=0),
    dict(type='RandomCrop'),
    dict(type='RandomHorizontalFlip', p=0.5),
    dict(type='RandomErasing', p=0.5, scale=(0.02, 0.4), ratio=(0.3, 1 / 0.3),
         ratio_sampling='uniform', attempts=100),
]
# Each batch runs twice through the network (the images and their M images): 8 ids x (2 + 2) keeps a
# batch of 64 trunk passes, as the official 4 x (4 + 4).
sampler = dict(type='CrossModalityIdentitySampler', num_ids=8, num_instances=2)
train_dataloader = dict(batch_size=32, num_workers=0)
# From scratch: one lr for the whole net, 0.05; the warm-up and the decay compressed to the epochs
# run.
optim_wrapper = dict(optimizer=dict(lr=0.05), paramwise_cfg=dict(_delete_=True))
param_scheduler = [
    dict(type='WarmupMultiStepLR', warmup=1, milestones=[4], gamma=0.1, by_epoch=True, begin=0),
]
train_cfg = dict(max_epochs=5)
test = dict(batch_size=128)
