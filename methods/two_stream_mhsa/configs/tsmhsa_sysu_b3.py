# SYSU ablation — row B3 (README, "Ablation grid"): + parts + hetero-center loss (~TSLFN+HC,
# the reference run).
_base_ = ['./tsmhsa_sysu.py']
entry = dict(method='two_stream_mhsa', kind='ablation', row='B3', label='B3 + parts + HC')
model = dict(mhsa_stages=[], aux='none')
