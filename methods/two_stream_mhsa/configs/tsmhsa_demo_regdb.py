# CPU demo of the full model on the synthetic RegDB: the SYSU demo's model and recipe
# (tsmhsa_demo_sysu.py); a RegDB split trains on fewer images per epoch, so more epochs.
_base_ = ['./tsmhsa_demo_sysu.py']
protocol_base = 'regdb'
train_cfg = dict(max_epochs=20)
