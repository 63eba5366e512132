# CPU demo of AGW: same architecture and losses, one block per ResNet stage (so one non-local block after
# layer2 and one after layer3), random init, small images, a few epochs on the synthetic SYSU-MM01.
_base_ = ['./agw_sysu.py']
entry = dict(method='agw', kind='demo', label='AGW (demo)')
model = dict(backbone=dict(pretrained=False, blocks=(1, 1, 1, 1)))
input_size = (64, 32)
train_pipeline = [
    dict(type='Pad', padding=4, fill=0),
    dict(type='RandomCrop'),
    dict(type='RandomHorizontalFlip', p=0.5),
]
sampler = dict(type='CrossModalityIdentitySampler', num_ids=8, num_instances=2)
train_dataloader = dict(batch_size=32, num_workers=0)
# A from-scratch trunk needs the full lr everywhere, and the warm-up/decay are compressed to the epochs run.
optim_wrapper = dict(paramwise_cfg=dict(_delete_=True))
param_scheduler = [
    dict(type='WarmupMultiStepLR', warmup=1, milestones=[5], gamma=0.1, by_epoch=True, begin=0),
]
train_cfg = dict(max_epochs=6)
