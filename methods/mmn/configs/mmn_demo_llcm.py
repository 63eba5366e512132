# CPU demo of MMN on the synthetic LLCM: the SYSU demo's model and recipe (mmn_demo_sysu.py), as
# mmn_llcm.py is mmn_sysu.py. See ../README.md, "LLCM".
_base_ = ['./mmn_demo_sysu.py']
protocol_base = 'llcm'
param_scheduler = [
    dict(type='WarmupMultiStepLR', warmup=1, milestones=[6], gamma=0.1, by_epoch=True, begin=0),
]
train_cfg = dict(max_epochs=7)
