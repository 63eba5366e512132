# CPU demo of MPANet on the synthetic RegDB: the SYSU demo's model and recipe (mpanet_demo_sysu.py) with
# the RegDB evaluation of mpanet_regdb.py (raw BNNeck features, squared Euclidean distance).
_base_ = ['./mpanet_demo_sysu.py']
protocol_base = 'regdb'
train_cfg = dict(max_epochs=30)
test = dict(distance='euclidean')
