# CPU demo of CAJ on the synthetic RegDB: the SYSU demo's model and recipe (caj_demo_sysu.py); a
# RegDB split trains on fewer images per epoch, so more epochs and a longer warm-up.
_base_ = ['./caj_demo_sysu.py']
protocol_base = 'regdb'
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='MultiStepLR', milestones=[9], gamma=0.1, by_epoch=True, begin=0),
]
train_cfg = dict(max_epochs=11)
