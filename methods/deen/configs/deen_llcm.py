# DEEN on LLCM, as ZYK100/LLCM@886e27c `DEEN/train.py --dataset llcm` trains it and `DEEN/test.py`
# (n_class 713, test.py:57-61) tests it: the SYSU-MM01 network (MFA after layer1-3, DEE(1024)
# before layer4, 2048-d features: model.py:205-257 builds it for every dataset but 'regdb'), input
# 384 x 144 (LLCMData resizes with ANTIALIAS to 144 x 384, data_loader.py:101-111), and the weaker
# erasing of transform_llcm (train.py:124-133: area 0.02-0.4, as RegDB). Losses, sampler, optimiser
# groups, schedule and the test feature are deen_sysu.py's. See ../README.md, "LLCM".
_base_ = ['./deen_sysu.py']
protocol_base = 'llcm'

train_pipeline = [
    dict(type='Pad', padding=10, fill=0),
    dict(type='RandomGrayscale', p=0.5),
    dict(type='RandomCrop'),
    dict(type='RandomHorizontalFlip', p=0.5),
    dict(type='RandomErasing', p=0.5, scale=(0.02, 0.4), ratio=(0.3, 1 / 0.3),
         ratio_sampling='uniform', attempts=100, value=(152, 142, 127)),
]
# train.py tests IR -> VIS (test_mode [1, 2], trial 0) after every epoch >= 1 and keeps the best
# Rank-1 of distmat7 (train.py:67,432-448): test-set model selection, not reproduced; the reported
# number is the final epoch's (protocol default).
