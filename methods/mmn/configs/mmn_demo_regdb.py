# CPU demo of MMN on the synthetic RegDB: the SYSU demo's model and recipe (mmn_demo_sysu.py); a
# RegDB split trains on fewer images per epoch, so more epochs.
_base_ = ['./mmn_demo_sysu.py']
protocol_base = 'regdb'
param_scheduler = [
    dict(type='WarmupMultiStepLR', warmup=1, milestones=[8], gamma=0.1, by_epoch=True, begin=0),
]
train_cfg = dict(max_epochs=10)
