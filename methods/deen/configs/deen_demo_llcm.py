# CPU demo of DEEN on the synthetic LLCM: the SYSU demo's recipe (deen_demo_sysu.py) with the LLCM
# recipe's weaker erasing (deen_llcm.py: area 0.02-0.4). Schedule and epochs: those of
# deen_demo_sysu.py. See ../README.md, "LLCM".
_base_ = ['./deen_demo_sysu.py']
protocol_base = 'llcm'
train_pipeline = [
    dict(type='Pad', padding=4, fill=0),
    dict(type='RandomGrayscale', p=0.5),
    dict(type='RandomCrop'),
    dict(type='RandomHorizontalFlip', p=0.5),
    dict(type='RandomErasing', p=0.5, scale=(0.02, 0.4), ratio=(0.3, 1 / 0.3),
         ratio_sampling='uniform', attempts=100, value=(152, 142, 127)),
]
