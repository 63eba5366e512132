# SYSU ablation — row B2 (README, "Ablation grid"): + 6 parts (TSLFN).
_base_ = ['./tsmhsa_sysu.py']
entry = dict(method='two_stream_mhsa', kind='ablation', row='B2', label='B2 + parts')
model = dict(mhsa_stages=[], aux='none', losses=dict(hc=None))
