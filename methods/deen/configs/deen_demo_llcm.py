# CPU demo of DEEN on the synthetic LLCM: the SYSU demo's recipe (deen_demo_sysu.py) with the LLCM
# recipe's weaker erasing (deen_llcm.py: area 0.02-0.4). See ../README.md, "LLCM".
_base_ = ['./deen_demo_sysu.py']
protocol_base = 'llcm'
train_pipeline = [
    dict(type='Pad', padding=4, fill=0),
    dict(type='RandomGrayscale', p=0.5),
    dict(type='RandomCrop'),
    dict(type='RandomHorizontalFlip', p=0.5),
    dict(type='RandomErasing', p=0.5, scale=(0.02, 0.4), ratio=(0.3, 1 / 0.3),
         ratio_sampling='uniform', attempts=100, value=(152, 142, 127)),
]
param_scheduler = [
    dict(type='WarmupMultiStepLR', warmup=1, milestones=[8], gamma=0.1, by_epoch=True, begin=0),
]
train_cfg = dict(max_epochs=10)
