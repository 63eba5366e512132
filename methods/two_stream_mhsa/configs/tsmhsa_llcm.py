# Two-stream MHSA on LLCM: the default configuration (README, "The model"), the same for every
# dataset (288 x 144 input, P = 4 x K = 8, 61 epochs ...); its sources publish no LLCM setting, so
# nothing else changes; the part classifiers have LLCM's 713 classes. See ../README.md, "LLCM".
_base_ = ['./tsmhsa_sysu.py']
protocol_base = 'llcm'
