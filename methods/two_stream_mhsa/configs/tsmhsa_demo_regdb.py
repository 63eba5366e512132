# CPU demo of the full model on the synthetic RegDB layout: the SYSU demo's settings (same
# architecture with 1 block per stage, from scratch, 64 x 32 input, 4 parts, 4 short epochs).
_base_ = ['./tsmhsa_demo_sysu.py']
protocol_base = 'regdb'
