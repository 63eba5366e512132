# AGW on LLCM, as ZYK100/LLCM@886e27c `AGW/train.py --dataset llcm` trains it. That folder is the
# LLCM authors' copy of mangye16/Cross-Modal-Re-ID-baseline (model.py, loss.py, utils.py and
# resnet.py are the same files); its train.py differs from agw_sysu.py's in one training transform:
# transform_train ends with RandomErasing(probability=0.5, mean=[0, 0, 0]) (train.py:103-111;
# random_erasing.py:22: area 0.02-0.4, aspect 0.3-1/0.3, 100 attempts), erased pixels = 0 in the
# normalised tensor = the ImageNet mean colour. Everything else is agw_sysu.py's: LLCMData resizes
# every training image to 144 x 288 with ANTIALIAS (data_loader.py:101-111, TestData :148),
# 8 ids x 4 per modality, the SGD groups, the warm-up and the steps at 20 and 50, 81 epochs
# (train.py:205-233,365). See ../README.md, "LLCM".
_base_ = ['./agw_sysu.py']
protocol_base = 'llcm'

train_pipeline = [
    dict(type='Pad', padding=10, fill=0),
    dict(type='RandomCrop'),
    dict(type='RandomHorizontalFlip', p=0.5),
    dict(type='RandomErasing', p=0.5, scale=(0.02, 0.4), ratio=(0.3, 1 / 0.3),
         ratio_sampling='uniform', attempts=100),
]
# train.py tests every second epoch (VIS -> IR without test.py's swap, trial 0) and keeps the best
# Rank-1 of the "fc" feature (train.py:387-403): test-set model selection, not reproduced; the
# reported number is the final epoch's (protocol default).
