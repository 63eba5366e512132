# SYSU ablation — row B5 (README, "Ablation grid"): + MHSA + parts + HC.
_base_ = ['./tsmhsa_sysu.py']
entry = dict(method='two_stream_mhsa', kind='ablation', row='B5', label='B5 + MHSA + parts + HC')
model = dict(aux='none')
