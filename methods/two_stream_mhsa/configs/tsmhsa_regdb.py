# Two-stream MHSA on RegDB: the default configuration (README, "The model"), which is the
# same for both datasets (288 x 144 input, P = 4 x K = 8, 60 epochs ...); only the protocol differs.
_base_ = ['./tsmhsa_sysu.py']
protocol_base = 'regdb'
