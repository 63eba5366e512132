# CPU demo of DEEN on the synthetic SYSU-MM01: the architecture and losses of deen_sysu.py (modality
# stems, shared layer1-4, MFA after layer1-3, DEE before layer4, GAP, BNNeck; ID + triplet + CPM +
# ORT on the tripled batch; six flip-summed test features) scaled to 2 CPU cores: one bottleneck per
# stage at an eighth of the width (base_channels=8, layer4 256 channels), random init, 64 x 32 input
# (every MFA map folds into whole tokens). See ../README.md for the measured figures.
_base_ = ['./deen_sysu.py']
entry = dict(method='deen', kind='demo', label='DEEN (demo)')
model = dict(backbone=dict(pretrained=False, blocks=(1, 1, 1, 1), base_channels=8))
input_size = (64, 32)
# bilinear, as the other demos (their margins were measured with it); the full recipe keeps lanczos
resize_filter = 'bilinear'
train_pipeline = [  # the official pipeline, padding scaled to the input size
    dict(type='Pad', padding=4, fill=0),
    dict(type='RandomGrayscale', p=0.5),
    dict(type='RandomCrop'),
    dict(type='RandomHorizontalFlip', p=0.5),
    dict(type='RandomErasing', p=0.5, scale=(0.2, 0.8), ratio=(0.3, 1 / 0.3),
         ratio_sampling='uniform', attempts=100, value=(152, 142, 127)),
]
sampler = dict(type='CrossModalityIdentitySampler', num_ids=6, num_instances=4)  # as deen_sysu.py
train_dataloader = dict(batch_size=48, num_workers=0)
# The official optimiser groups (lr 0.1; stems, trunk, MFA and DEE at 0.1 x lr): with one lr of 0.05
# for the whole random-init net, as the other demos use, CPM shrinks the pooled features to zero
# within the first epoch (the cross-modality centre distances it pulls down start larger than the
# same-modality ones it pushes up) and the run ends with NaN features. The warm-up and the decay are
# compressed to the epochs run.
optim_wrapper = dict(optimizer=dict(lr=0.1))
param_scheduler = [
    dict(type='WarmupMultiStepLR', warmup=1, milestones=[8], gamma=0.1, by_epoch=True, begin=0),
]
train_cfg = dict(max_epochs=10)
test = dict(batch_size=128)
