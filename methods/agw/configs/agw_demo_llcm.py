# CPU demo of AGW on the synthetic LLCM: the SYSU demo's model and recipe (agw_demo_sysu.py) with
# the random erasing of the LLCM recipe (agw_llcm.py). Schedule and epochs: those of
# agw_demo_sysu.py. See ../README.md, "LLCM".
_base_ = ['./agw_demo_sysu.py']
protocol_base = 'llcm'
train_pipeline = [
    dict(type='Pad', padding=4, fill=0),
    dict(type='RandomCrop'),
    dict(type='RandomHorizontalFlip', p=0.5),
    dict(type='RandomErasing', p=0.5, scale=(0.02, 0.4), ratio=(0.3, 1 / 0.3),
         ratio_sampling='uniform', attempts=100),
]
