# CPU demo of AGW on the synthetic RegDB: the SYSU demo's model and recipe (agw_demo_sysu.py); a
# RegDB split trains on fewer images per epoch, so more epochs.
_base_ = ['./agw_demo_sysu.py']
protocol_base = 'regdb'
param_scheduler = [
    dict(type='WarmupMultiStepLR', warmup=1, milestones=[14], gamma=0.1, by_epoch=True, begin=0),
]
train_cfg = dict(max_epochs=16)
