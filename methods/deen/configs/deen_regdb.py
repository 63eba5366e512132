# DEEN on RegDB, as `DEEN/train.py --dataset regdb --trial t` runs it (one model per split): the
# SYSU-MM01 recipe with the shallower network (model.py:210-214,250-252: MFA after layer1-2,
# DEE(512) before layer3, no MFA3 and no layer4: 1024-d features) and the weaker erasing of
# transform_regdb (train.py:114-123: area 0.02-0.4). See ../README.md.
_base_ = ['./deen_sysu.py']
protocol_base = 'regdb'

model = dict(last_stage=3)
train_pipeline = [
    dict(type='Pad', padding=10, fill=0),
    dict(type='RandomGrayscale', p=0.5),
    dict(type='RandomCrop'),
    dict(type='RandomHorizontalFlip', p=0.5),
    dict(type='RandomErasing', p=0.5, scale=(0.02, 0.4), ratio=(0.3, 1 / 0.3),
         ratio_sampling='uniform', attempts=100, value=(152, 142, 127)),
]
# train.py tests visible -> thermal after every epoch >= 1 and keeps the best Rank-1 (see
# deen_sysu.py); the nearest optimistic rule here ranks the mean Rank-1 of both directions:
# selection = dict(rule='best-test-rank1', epochs=list(range(2, 152)), criterion='mean-r1')
