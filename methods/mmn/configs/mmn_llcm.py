# MMN on LLCM. The MMN authors give no LLCM setting (ZYK100/MMN@01d70d5 trains SYSU-MM01 and RegDB;
# the LLCM README's MMN row, ZYK100/LLCM@886e27c README.md:25, comes with no script). Choice: the
# SYSU-MM01 recipe unchanged (mmn_sysu.py: MMG, 4 stripes, ID + triplet + DCL, 384 x 192 input,
# 81 epochs), SYSU-MM01 being the closest benchmark (many cameras, single-shot galleries); the
# classifiers have LLCM's 713 classes. MMN's own test-set selection rule has no LLCM form (its
# train.py has no llcm test), so only the protocol's final epoch exists here. See ../README.md,
# "LLCM".
_base_ = ['./mmn_sysu.py']
protocol_base = 'llcm'
