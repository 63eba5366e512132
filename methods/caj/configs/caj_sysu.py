# CAJ (Ye et al., ICCV 2021) on SYSU-MM01, as mangye16/Cross-Modal-Re-ID-baseline@e817a26
# `ICCV21_CAJ/train_ext.py --dataset sysu --lr 0.1 --method adp --augc 1 --rande 0.5 --alpha 1
# --square 1 --gamma 1` trains it (README.md line 30). See ../README.md.
#
# The network is AGW's embed_net (ICCV21_CAJ/model.py is the root model.py unchanged), and so are
# the input size (288 x 144), the LANCZOS resize, the sampler (8 ids x 4 per modality), the SGD
# groups (all but bottleneck/classifier at 0.1 x lr 0.1, momentum 0.9, nesterov, wd 5e-4) and the
# warm-up/step schedule (train_ext.py lines 239-267): all inherited from AGW's config. CAJ adds the
# channel augmentations and a second visible view, the ADP triplet, 100 epochs and the flip test.
method_base = 'agw/agw_sysu'
protocol_base = 'sysu'
entry = dict(method='caj', kind='full', label='CAJ')

model = dict(
    losses=dict(
        # id: AGW's cross-entropy, here on all 96 logits (train_ext.py line 307). The KL term
        # (lines 311-314) has weight --kl 0 in the README command and is left out.
        # TripletLoss_ADP(alpha=1, gamma=1, square=1) on the 96 pre-BN GeM features (line 317)
        tri=dict(_delete_=True, type='TripletLossADP', input='pool', weight=1.0,
                 alpha=1.0, gamma=1.0, square=1),
    ),
    # testa.py: normalise(normalise(F(x)) + normalise(F(flip x))) on the BNNeck ("fc") feature
    test_flip='renormalised-mean',
)

# data_loader.py lines 66-95: three hard-coded pipelines (the --augc/--rande flags are never read).
# Every view: Pad(10, fill 0) -> RandomCrop(288, 144) -> HFlip -> ToTensor + Normalize ->
# ChannelRandomErasing(0.5, CIFAR means), each view with its own random draws; then
train_pipeline = [
    dict(type='Pad', padding=10, fill=0),
    dict(type='RandomCrop'),
    dict(type='RandomHorizontalFlip', p=0.5),
    dict(type='Normalize'),                        # the channel operations act on normalised values
    # sl 0.02, sh 0.4, r1 0.3, fill = the CIFAR-10 means (0.4914, 0.4822, 0.4465)
    dict(type='ChannelRandomErasing', p=0.5),
]
train_views = dict(
    # two views of each sampled visible image: as is, and with a random channel copied into all
    # three (ChannelExchange(gray=2): R, G or B, 1/3 each)
    visible=[[], [dict(type='ChannelExchange', gray=2)]],
    # one infrared view: ChannelAdapGray(0.5): R, G, B 1/4 each, grey 1/8, unchanged 1/8
    infrared=[[dict(type='ChannelAdapGray', p=0.5)]],
)
# The sampler still draws 8 ids x (4 visible + 4 infrared) = 64 images (batch_size = 64); with
# the second visible view the network sees [visible view 0 | visible view 1 | infrared] = 96
# images, labels cat(l1, l1, l2) (train_ext.py lines 286-305).

train_cfg = dict(max_epochs=100)                      # `for epoch in range(0, 100)` (line 417)
