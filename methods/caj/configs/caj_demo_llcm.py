# CPU demo of CAJ on the synthetic LLCM: the SYSU demo's model and recipe (caj_demo_sysu.py), as
# caj_llcm.py is caj_sysu.py. See ../README.md, "LLCM".
_base_ = ['./caj_demo_sysu.py']
protocol_base = 'llcm'
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=3,
         convert_to_iter_based=True),
    dict(type='MultiStepLR', milestones=[7], gamma=0.1, by_epoch=True, begin=0),
]
train_cfg = dict(max_epochs=8)
