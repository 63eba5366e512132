# CPU demo of DEEN on the synthetic RegDB: the SYSU demo's recipe (deen_demo_sysu.py) with RegDB's
# shallower network (last_stage=3: MFA after layer1-2, DEE before layer3, no layer4) and erasing;
# a RegDB split trains on fewer images per epoch, so more epochs.
_base_ = ['./deen_demo_sysu.py']
protocol_base = 'regdb'
model = dict(last_stage=3)
train_pipeline = [
    dict(type='Pad', padding=4, fill=0),
    dict(type='RandomGrayscale', p=0.5),
    dict(type='RandomCrop'),
    dict(type='RandomHorizontalFlip', p=0.5),
    dict(type='RandomErasing', p=0.5, scale=(0.02, 0.4), ratio=(0.3, 1 / 0.3),
         ratio_sampling='uniform', attempts=100, value=(152, 142, 127)),
]
param_scheduler = [
    dict(type='WarmupMultiStepLR', warmup=1, milestones=[14], gamma=0.1, by_epoch=True, begin=0),
]
train_cfg = dict(max_epochs=16)
