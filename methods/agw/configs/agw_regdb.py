# AGW on RegDB: the official train.py uses the same model, losses, sampler and schedule for both
# datasets (only the data and the test direction differ, and those belong to the protocol). See
# ../README.md.
_base_ = ['./agw_sysu.py']
protocol_base = 'regdb'
