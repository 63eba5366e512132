# SYSU ablation — leave-one-out: one global feature (avg over the whole map, one 512-d embedding).
_base_ = ['./tsmhsa_sysu.py']
entry = dict(method='two_stream_mhsa', kind='ablation', row='LOO-parts', label='w/o parts')
model = dict(num_parts=1)
