# SYSU ablation — leave-one-out: identity loss only.
_base_ = ['./tsmhsa_sysu.py']
entry = dict(method='two_stream_mhsa', kind='ablation', row='LOO-HC', label='w/o HC loss')
model = dict(losses=dict(hc=None))
