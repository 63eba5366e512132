# SYSU ablation — row B4 (README, "Ablation grid"): + MHSA + parts.
_base_ = ['./tsmhsa_sysu.py']
entry = dict(method='two_stream_mhsa', kind='ablation', row='B4', label='B4 + MHSA + parts')
model = dict(aux='none', losses=dict(hc=None))
