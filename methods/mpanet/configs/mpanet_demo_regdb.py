# CPU demo of MPANet on the synthetic RegDB: the SYSU demo's recipe (mpanet_demo_sysu.py) with the
# RegDB evaluation of mpanet_regdb.py (raw BNNeck features, squared Euclidean distance). RegDB
# trains on 60 identities only: at the SYSU demo's width 8 the result varied with the seed (V->T mAP
# 39.8 / 26.7 / 28.5 for seeds 0 / 1 / 2), at width 16 with a x0.1 step for the last 6 epochs it
# did not (48.4 / 45.6 / 50.8).
_base_ = ['./mpanet_demo_sysu.py']
protocol_base = 'regdb'
model = dict(backbone=dict(base_channels=16))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, begin=0, milestones=[24], gamma=0.1)]
train_cfg = dict(max_epochs=30)
test = dict(distance='euclidean')
