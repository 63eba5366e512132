# SYSU ablation — leave-one-out: no auxiliary (grayscale) modality.
_base_ = ['./tsmhsa_sysu.py']
entry = dict(method='two_stream_mhsa', kind='ablation', row='LOO-aux', label='w/o aux modality')
model = dict(aux='none')
