# CPU demo of AGW on the synthetic RegDB (see agw_demo_sysu.py).
_base_ = ['./agw_demo_sysu.py']
protocol_base = 'regdb'
