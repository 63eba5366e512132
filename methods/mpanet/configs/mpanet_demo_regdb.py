# CPU demo of MPANet on a (synthetic) RegDB: the demo of mpanet_demo_sysu.py on RegDB's protocol,
# with what RegDB's recipe (mpanet_regdb.py) changes beyond what the demo overrides: the test
# distance.
_base_ = ['./mpanet_demo_sysu.py']
protocol_base = 'regdb'
# as mpanet_regdb.py: the official RegDB evaluation (raw BNNeck features, squared L2)
test = dict(distance='euclidean')
train_cfg = dict(max_epochs=4)
