# CPU demo of the full model on the synthetic SYSU-MM01: the architecture and losses of
# tsmhsa_sysu.py (two non-shared streams with BoT MHSA in layer4, horizontal parts, ID +
# hetero-centre loss, gray auxiliary modality) scaled to 2 CPU cores: one bottleneck per stage at an
# eighth of the width (base_channels=8, so the BoT blocks are 64 wide: 4 heads x 16), random init,
# 64 x 32 input (layer4 map 4 x 2: four one-row parts instead of six). See ../README.md for the
# measured figures.
_base_ = ['./tsmhsa_sysu.py']
entry = dict(method='two_stream_mhsa', kind='demo', label='Two-stream MHSA (demo)')

input_size = (64, 32)
# From scratch, the HC loss at margin 0 pulls every part embedding to one point before the identity
# loss has separated anything (the ID loss then stays at chance, even at weight 0.05); a margin on
# the squared centre distance of the L2-normalised embeddings (at most 4) lets identities separate
# first. Measured (SYSU demo, seed 0 / 1, all-search mAP): margin 0.5 -> 27.6 / -, 1.0 -> 46.7 /
# 44.4, 1.5 -> 49.3 / 53.5. HC sums over the P identities of a batch: lambda 0.5 is tied to P = 4,
# so P = 8 halves it (see ../README.md).
model = dict(input_size=input_size, num_parts=4, mhsa_dim_head=16,
             backbone=dict(pretrained=False, blocks=(1, 1, 1, 1), base_channels=8),
             losses=dict(hc=dict(weight=0.25, margin=1.5)))
sampler = dict(num_ids=8, num_instances=4)            # 32 V + 32 I (+ 32 A) per batch
train_dataloader = dict(batch_size=64, num_workers=0)
# From scratch (no ImageNet weights), one group at Adam 1e-3 (SGD at 0.05 stayed at chance as long).
# Width 16 for 7 epochs: 47.4 / 49.3 all-search R1 / mAP (92 CPU-s); width 8 for 9 epochs: 49.1 /
# 52.1 (70 CPU-s).
optim_wrapper = dict(optimizer=dict(_delete_=True, type='Adam', lr=1e-3, weight_decay=5e-4),
                     paramwise_cfg=dict(_delete_=True))
param_scheduler = []
train_cfg = dict(max_epochs=9)
test = dict(batch_size=128)
