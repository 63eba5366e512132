# SYSU ablation — row B0 (README, "Ablation grid"): two-stream, global feature, ID loss only.
_base_ = ['./tsmhsa_sysu.py']
entry = dict(method='two_stream_mhsa', kind='ablation', row='B0', label='B0 baseline two-stream')
model = dict(mhsa_stages=[], num_parts=1, aux='none', losses=dict(hc=None))
