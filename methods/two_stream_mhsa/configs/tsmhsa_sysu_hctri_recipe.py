# SYSU ablation — the full model trained with the HcTri/AGW recipe
# (hijune6/Hetero-center-triplet-loss-for-VT-Re-ID, train_mine.py)
# instead of TSLFN's: pad-10 random crop, P=8 x K=4, lr 0.1 (heads, MHSA) / 0.01 (trunk) with a
# 10-epoch warm-up lr*(e+1)/10, x0.1 at 20 and 50, 61 epochs. The fallback if the default
# recipe lands well below the reported mAP.
_base_ = ['./tsmhsa_sysu.py']
entry = dict(method='two_stream_mhsa', kind='ablation', row='R-hctri', label='full, HcTri recipe')

train_pipeline = [
    dict(type='RandomHorizontalFlip', p=0.5),
    dict(type='Pad', padding=10, fill=0), dict(type='RandomCrop'),
]
sampler = dict(num_ids=8, num_instances=4)
# HC sums over the P ids of a batch: lambda 0.5 is tied to P = 4
model = dict(losses=dict(hc=dict(weight=0.25)))
train_dataloader = dict(batch_size=64)
optim_wrapper = dict(optimizer=dict(lr=0.1))
param_scheduler = [
    # factor (e+1)/10 for epochs 0..9, then 1.0
    dict(type='LinearLR', by_epoch=True, begin=0, end=10, start_factor=0.1, end_factor=1.0),
    dict(type='MultiStepLR', by_epoch=True, begin=0, milestones=[20, 50], gamma=0.1),
]
