# SYSU ablation — leave-one-out: plain ResNet-50 layer4 (3x3 convs) in both streams.
_base_ = ['./tsmhsa_sysu.py']
entry = dict(method='two_stream_mhsa', kind='ablation', row='LOO-MHSA', label='w/o MHSA')
model = dict(mhsa_stages=[])
