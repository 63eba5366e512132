# CPU demo of the full model on the synthetic RegDB layout: same architecture with 1 block per stage,
# from scratch, 64 x 32 input (layer4 map 4 x 2, 4 one-row parts instead of 6), 4 short epochs at a constant lr.
_base_ = ['./tsmhsa_regdb.py']
entry = dict(method='two_stream_mhsa', kind='demo', label='Two-stream MHSA (demo)')

input_size = (64, 32)                                 # layer4 map 4 x 2: four one-row parts
# HC sums over the P identities of a batch: lambda 0.5 is tied to P = 4, so P = 8 halves it (spec §4.2).
model = dict(input_size=input_size, num_parts=4, backbone=dict(pretrained=False, blocks=(1, 1, 1, 1)),
             hc_weight=0.25)
sampler = dict(num_ids=8, num_instances=2)            # more identities per batch: faster ID learning
train_dataloader = dict(batch_size=32, num_workers=0)
# From scratch: the trunk gets the full learning rate (the x0.1 group is for ImageNet weights),
# and a higher base lr so that a few short epochs move the identity loss.
optim_wrapper = dict(optimizer=dict(lr=0.05), paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=1.0)}))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, begin=0, milestones=[6], gamma=0.1)]
train_cfg = dict(max_epochs=4)
test = dict(batch_size=128)
