# CPU demo of the full model on the synthetic LLCM: the SYSU demo's model and recipe
# (tsmhsa_demo_sysu.py), as tsmhsa_llcm.py is tsmhsa_sysu.py. See ../README.md, "LLCM".
_base_ = ['./tsmhsa_demo_sysu.py']
protocol_base = 'llcm'
train_cfg = dict(max_epochs=12)
