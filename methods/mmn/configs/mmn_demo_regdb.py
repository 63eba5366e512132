# CPU demo of MMN on the synthetic RegDB (same scaling as mmn_demo_sysu.py).
_base_ = ['./mmn_demo_sysu.py']
protocol_base = 'regdb'
entry = dict(method='mmn', kind='demo', label='MMN (demo)')
