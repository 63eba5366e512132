# CPU demo of CAJ on the synthetic SYSU-MM01: the model, losses, channel augmentations, second
# visible view and flip test of caj_sysu.py, scaled to 2 CPU cores as AGW's demo is (one bottleneck
# per stage at an eighth of the width, random init, 64 x 32 input, one lr for the whole net). See
# ../README.md for the measured figures.
_base_ = ['./caj_sysu.py']
entry = dict(method='caj', kind='demo', label='CAJ (demo)')
model = dict(backbone=dict(pretrained=False, blocks=(1, 1, 1, 1), base_channels=8))
input_size = (64, 32)
resize_filter = 'bilinear'          # as AGW's demo; the full recipe keeps lanczos
train_pipeline = [  # the official pipeline, padding scaled to the input size
    dict(type='Pad', padding=4, fill=0),
    dict(type='RandomCrop'),
    dict(type='RandomHorizontalFlip', p=0.5),
    dict(type='Normalize'),
    dict(type='ChannelRandomErasing', p=0.5),
]
train_dataloader = dict(batch_size=64, num_workers=0)
# From scratch: one lr for the whole net, 0.05 (as AGW's demo). On a random trunk the ADP triplet
# starts far from fp = cn (a loss in the tens) and shrinks every distance toward 0 within the first
# iterations, where its squared difference gives almost no gradient. A warm-up per iteration from
# 0.01 x lr keeps the demo learning (see ../README.md, demo figures); x 0.1 for the last epoch.
optim_wrapper = dict(optimizer=dict(lr=0.05), paramwise_cfg=dict(_delete_=True))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=3,
         convert_to_iter_based=True),
    dict(type='MultiStepLR', milestones=[5], gamma=0.1, by_epoch=True, begin=0),
]
train_cfg = dict(max_epochs=6)
test = dict(batch_size=128)
