# CPU demo of MPANet on the synthetic SYSU-MM01: the architecture and losses of mpanet_sysu.py (MAMs
# after stages 3 and 4, 6 pattern maps, BNNeck; ID, modality ID, mutual mean KL, centre cluster,
# pattern overlap) scaled to 2 CPU cores: one bottleneck per stage at an eighth of the width
# (base_channels=8), random init, 64 x 32 input. See ../README.md for the measured figures.
_base_ = ['./mpanet_sysu.py']
entry = dict(method='mpanet', kind='demo', label='MPANet (demo)')
model = dict(backbone=dict(pretrained=False, blocks=(1, 1, 1, 1), base_channels=8))
input_size = (64, 32)
train_pipeline = [  # the official pipeline without random erasing (a short run from scratch)
    dict(type='RandomHorizontalFlip', p=0.5),
    dict(type='Pad', padding=4, fill=127),
    dict(type='RandomCrop'),
]
sampler = dict(type='MPANetIdentitySampler', num_ids=8, num_instances=4)
train_dataloader = dict(batch_size=64, num_workers=0)
# From scratch (no ImageNet weights): a larger Adam step, no decay. An MPANet epoch uses each
# identity's images about once (a short epoch), hence the many epochs. Measured on the default
# synthetic SYSU-MM01 (all-search R1 / mAP): lr 1e-3 for 15 epochs 24.9 / 29.1, 3e-3 34.3 / 37.9
# (gap 0.25); width 16 for 18 epochs 42.5 / 44.4 (61 CPU-s), width 8 for 24 epochs 41.5 / 43.8 (43
# CPU-s).
optim_wrapper = dict(optimizer=dict(lr=3e-3))
param_scheduler = []
train_cfg = dict(max_epochs=24)
test = dict(batch_size=128)
