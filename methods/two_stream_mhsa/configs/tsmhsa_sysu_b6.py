# SYSU ablation — row B6 (README, "Ablation grid"): the full model (same model as tsmhsa_sysu.py).
_base_ = ['./tsmhsa_sysu.py']
entry = dict(method='two_stream_mhsa', kind='ablation', row='B6', label='B6 full')
