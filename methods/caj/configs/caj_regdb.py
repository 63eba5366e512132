# CAJ on RegDB: train_ext.py uses the same model, losses, pipelines, sampler and schedule for both
# datasets (only the data and the test direction differ, and those belong to the protocol; main.sh
# trains RegDB with the README's flags). See ../README.md.
_base_ = ['./caj_sysu.py']
protocol_base = 'regdb'
