# CPU demo of MPANet on the synthetic LLCM: the SYSU demo's model and recipe (mpanet_demo_sysu.py),
# as mpanet_llcm.py is mpanet_sysu.py. See ../README.md, "LLCM".
_base_ = ['./mpanet_demo_sysu.py']
protocol_base = 'llcm'
