# CPU demo of MMN: same architecture (MMG, modality stems, shared trunk, 4 stripes) and losses, one block per
# ResNet stage, random init, small images, a few epochs on the synthetic SYSU-MM01.
_base_ = ['./mmn_sysu.py']
entry = dict(method='mmn', kind='demo', label='MMN (demo)')
model = dict(backbone=dict(pretrained=False, blocks=(1, 1, 1, 1)))
input_size = (64, 32)                                 # layer4 map 4 x 2: one row per stripe
train_pipeline = [
    dict(type='Pad', padding=4, fill=0),
    dict(type='RandomCrop'),
    dict(type='RandomHorizontalFlip', p=0.5),
    dict(type='RandomErasing', p=0.5, scale=(0.02, 0.4), ratio=(0.3, 1 / 0.3), ratio_sampling='uniform',
         attempts=100),
]
sampler = dict(type='CrossModalityIdentitySampler', num_ids=8, num_instances=2)
train_dataloader = dict(batch_size=32, num_workers=0)
# A from-scratch trunk needs the full lr everywhere, and the warm-up/decay are compressed to the epochs run.
# An epoch runs every training image twice (original + M image) through a stride-1 ResNet-50, so the demo
# keeps to 3 epochs (3.5-10 minutes per epoch on 2 busy CPU cores for the 50-id synthetic SYSU-MM01).
optim_wrapper = dict(paramwise_cfg=dict(_delete_=True))
param_scheduler = [
    dict(type='WarmupMultiStepLR', warmup=1, milestones=[2], gamma=0.1, by_epoch=True, begin=0),
]
train_cfg = dict(max_epochs=2)
