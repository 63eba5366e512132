# MPANet on RegDB, as the official configs/RegDB.yml trains it (see methods/mpanet/README.md).
# Everything not set here is as in the SYSU config (the official RegDB.yml differs
# from SYSU.yml only in these settings).
_base_ = ['./mpanet_sysu.py']
protocol_base = 'regdb'
entry = dict(method='mpanet', kind='full', label='MPANet')

input_size = (256, 128)
# P = 12 ids x (5 visible + 5 thermal) = 120 images per batch.
sampler = dict(type='MPANetIdentitySampler', num_ids=12, num_instances=5)
train_dataloader = dict(batch_size=120, num_workers=8)
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, begin=0, milestones=[110], gamma=0.1)]
train_cfg = dict(max_epochs=140)

# The official RegDB evaluation (utils/eval_regdb.py) ranks raw (not L2-normalised) BNNeck
# features by squared Euclidean distance; set 'cosine' for the common protocol.
test = dict(distance='euclidean', batch_size=64)

# The reported number is the final epoch's. The official code keeps the best of epochs
# 120-140 by the mean Rank-1 of both directions on the test set; uncomment only for an optimistic
# run:
# selection = dict(rule='best-test-rank1', epochs=[120, 125, 130, 135, 140])  # OPTIMISTIC: test-set
