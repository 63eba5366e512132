# MPANet on LLCM. The MPANet authors give no LLCM setting (DoubtedSteam/MPANet@f57fd5c configs/
# holds SYSU.yml and RegDB.yml only). Choice: the SYSU-MM01 recipe unchanged (mpanet_sysu.py, i.e.
# SYSU.yml: MAMs, 6 patterns, its losses, 384 x 128 input, P 16 x K 4, Adam, 140 epochs),
# SYSU-MM01 being the closest benchmark (many cameras, single-shot galleries); the classifiers
# have LLCM's 713 classes. See ../README.md, "LLCM".
_base_ = ['./mpanet_sysu.py']
protocol_base = 'llcm'
