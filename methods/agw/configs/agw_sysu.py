# AGW (Ye et al., TPAMI 2021) on SYSU-MM01, as mangye16/Cross-Modal-Re-ID-baseline
# `train.py --method agw` runs it (defaults: --lr 0.1 --batch-size 8 --num_pos 4 --img_h 288
# --img_w 144). AGW has no model class: it is the harness's CrossModalityReID composed of the parts
# below. See ../README.md.
protocol_base = 'sysu'
entry = dict(method='agw', kind='full', label='AGW')

model = dict(
    type='CrossModalityReID',
    # visible and infrared stems, shared layer1-4, last stride 1, ImageNet ResNet-50 (IMAGENET1K_V1)
    backbone=dict(type='TwoStreamResNet', share_from=1, depth=50, last_stride=1, pretrained=True),
    # non-local blocks after blocks 2,3 of layer2 and 3,4,5 of layer3 (non_layers = [0, 2, 3, 0])
    non_local=dict(type='NonLocalStages', counts=(0, 2, 3, 0)),
    neck=dict(type='GeneralizedMeanPooling', p=3.0),               # GeM, fixed p = 3
    # BNNeck (weight ~ N(1, 0.01), bias frozen at 0) + bias-free classifier ~ N(0, 0.001)
    head=dict(type='BNNeckHead', bnneck_weight_std=0.01, classifier_std=0.001),
    losses=dict(
        id=dict(type='IdentityLoss', input='logits', weight=1.0),   # CE on the BNNeck logits
        # weighted regularised triplet (TripletLoss_WRT) on the pre-BN pooled feature
        tri=dict(type='WeightedRegularizedTriplet', input='pool', weight=1.0),
    ),
    test_feature='bn',          # test.py's "fc" feature (the reported one), L2-normalised
)

input_size = (288, 144)
# Image.resize(..., Image.ANTIALIAS), i.e. PIL's LANCZOS, for training (pre_process_sysu.py:56,
# RegDB data_loader.py:52,60) and test images (data_loader.py:96);
# mangye16/Cross-Modal-Re-ID-baseline@e817a26.
resize_filter = 'lanczos'
# train.py transform_train: Pad(10) (fill 0) -> RandomCrop(288, 144) -> RandomHorizontalFlip;
# no random erasing.
train_pipeline = [
    dict(type='Pad', padding=10, fill=0),
    dict(type='RandomCrop'),
    dict(type='RandomHorizontalFlip', p=0.5),
]
# utils.IdentitySampler: 8 ids x (4 visible + 4 infrared) = 64 images per batch.
sampler = dict(type='CrossModalityIdentitySampler', num_ids=8, num_instances=4)
train_dataloader = dict(batch_size=64, num_workers=4)

# SGD groups: all but the head (bottleneck, classifier) at 0.1 x lr (trunk, stems, non-local).
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1), 'non_local': dict(lr_mult=0.1)}),
)
# adjust_learning_rate: epoch e < 10 -> lr * (e + 1) / 10; 10..19 -> lr; 20..49 -> lr / 10;
# >= 50 -> lr / 100.
param_scheduler = [
    dict(type='WarmupMultiStepLR', warmup=10, milestones=[20, 50], gamma=0.1, by_epoch=True,
         begin=0),
]
train_cfg = dict(max_epochs=81)                       # `for epoch in range(0, 81)`
amp = dict(enabled=False)                             # the official code trains in fp32
# test.py: query_feat @ gall_feat.T on L2-normalised features
test = dict(distance='cosine', batch_size=64)
