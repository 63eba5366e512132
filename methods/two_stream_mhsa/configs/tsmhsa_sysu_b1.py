# SYSU ablation — row B1 (README, "Ablation grid"): + MHSA (relative positions).
_base_ = ['./tsmhsa_sysu.py']
entry = dict(method='two_stream_mhsa', kind='ablation', row='B1', label='B1 + MHSA')
model = dict(num_parts=1, aux='none', losses=dict(hc=None))
