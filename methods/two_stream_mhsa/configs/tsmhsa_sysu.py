# Two-stream MHSA on SYSU-MM01: the default configuration (README, "The model").
# Every model key is a switch of the README's "Options" table, and model.losses the loss set; the
# SYSU ablation configs (tsmhsa_sysu_*.py) change a few.
protocol_base = 'sysu'
entry = dict(method='two_stream_mhsa', kind='full', label='Two-stream MHSA')

input_size = (288, 144)                       # (H, W); layer4 map 18 x 9 (stride 16, last stride 1)
resize_filter = 'bilinear'                    # PIL bilinear (torchvision Resize), train and test
model = dict(
    type='TwoStreamMHSA',
    # MHSA relative tables and part windows are sized for it
    input_size=input_size,
    backbone=dict(depth=50, last_stride=1, pretrained=True),
    share_from=5,                             # no stage shared: two complete ResNet-50s
    mhsa_stages=[4],                          # BoT: all 3 bottlenecks of layer4, in each stream
    mhsa_heads=4, mhsa_dim_head=128,
    pos_enc='rel', rel_pos_scaled=True,       # 2-D relative position logits (BoTNet)
    bot_zero_init_last_bn=False,
    num_parts=6, part_pool='avg',             # 6 stripes of 3 x 9
    # Linear(2048->512)+BN1d, LeakyReLU(0.1)+Linear(512->C)
    part_head='tslfn', dropout=0.0,
    aux='gray', aux_route='infrared',         # grayscale copy of each visible image, IR stream
    test_feat='emb',                          # 6 x 512 L2-normalised embeddings = 3072-d
    # Per part, for the rows [V | A | I] (modality codes 0, 2, 1): logits, emb (raw part
    # embedding), emb_l2 (L2-normalised), pool (pooled stripe). README, "Losses".
    losses=dict(
        # sum over the parts of each part classifier's CE (TSLFN), no label smoothing
        id=dict(type='IdentityLoss', input='logits', parts='sum', label_smoothing=0.0),
        # hetero-centre loss (Zhu et al.) on each L2-normalised part embedding, summed over parts
        # and identities, lambda 0.5, margin 0; modality pairs V-I, A-I, V-A (a pair whose
        # modality has no rows, as A without the auxiliary modality, adds nothing)
        hc=dict(type='HeteroCenterLoss', input='emb_l2', parts='sum', weight=0.5,
                pairs=[(0, 1), (2, 1), (0, 2)], margin=0.0, reduction='sum'),
    ),
)

# TSLFN+HC recipe: resize + flip only
train_pipeline = [dict(type='RandomHorizontalFlip', p=0.5)]
# 32 V + 32 I (+ 32 A)
sampler = dict(type='CrossModalityIdentitySampler', num_ids=4, num_instances=8)
train_dataloader = dict(batch_size=64, num_workers=8)

# lr 0.01 for the new layers (part heads, MHSA + its BN, aux generator), 0.001 for the pretrained
# trunk. 'mhsa_branch' is longer than 'backbone', so mmengine matches it first.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1),
                                    'mhsa_branch': dict(lr_mult=1.0)}))
# epochs 0-29 lr, 30-59 0.1 lr, epoch 60 0.01 lr (the source runs range(0, 61))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, begin=0, milestones=[30, 60], gamma=0.1)]
train_cfg = dict(max_epochs=61)
# fp32, as designed; dict(enabled=True, dtype='float16') switches to AMP on CUDA (losses and
# softmax stay fp32).
amp = dict(enabled=False)
test = dict(distance='cosine', batch_size=64)
