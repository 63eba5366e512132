# CAJ on LLCM. The CAJ authors give no LLCM setting (ICCV21_CAJ/ trains SYSU-MM01 and RegDB only;
# the LLCM README's CAJ row, ZYK100/LLCM@886e27c README.md:24, comes with no script). Choice: the
# SYSU-MM01 recipe unchanged (caj_sysu.py: the README command's model, losses, channel
# augmentations, second visible view, 288 x 144 input, 100 epochs, flip test), SYSU-MM01 being the
# closest benchmark (many cameras, single-shot galleries); the classifier has LLCM's 713 classes.
# See ../README.md, "LLCM".
_base_ = ['./caj_sysu.py']
protocol_base = 'llcm'
