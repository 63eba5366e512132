# CPU demo of AGW: same architecture and losses, one block per ResNet stage (so one non-local block after
# layer2 and one after layer3), random init, tiny images, a few epochs on the synthetic SYSU-MM01.
# Measured on the 50-id synthetic SYSU (tests/conftest.py), 2 shared CPU cores: ~35 iterations per epoch.
_base_ = ['./agw_sysu.py']
entry = dict(method='agw', kind='demo', label='AGW (demo)')
model = dict(backbone=dict(pretrained=False, blocks=(1, 1, 1, 1)))
input_size = (32, 16)
train_pipeline = [
    dict(type='Pad', padding=2, fill=0),
    dict(type='RandomCrop'),
    dict(type='RandomHorizontalFlip', p=0.5),
]
sampler = dict(type='CrossModalityIdentitySampler', num_ids=8, num_instances=2)
train_dataloader = dict(batch_size=32, num_workers=0)
# From scratch: the whole net at one lr (no pretrained trunk to protect); lr 0.1 makes the randomly
# initialised classifier blow up (ID loss ~20 after one epoch), 0.01 trains steadily. Warm-up and decay
# are compressed to the epochs run.
optim_wrapper = dict(optimizer=dict(lr=0.01), paramwise_cfg=dict(_delete_=True))
param_scheduler = [
    dict(type='WarmupMultiStepLR', warmup=1, milestones=[4], gamma=0.1, by_epoch=True, begin=0),
]
train_cfg = dict(max_epochs=5)
