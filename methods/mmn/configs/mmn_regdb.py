# MMN on RegDB: the official train.py uses the same model, losses, sampler and schedule for both
# datasets (`python train.py --dataset regdb --trial t`, one model per trial). The harness evaluates
# both directions; the official test.py can only run thermal->visible (its --tvsearch flag is always
# True). See ../README.md.
_base_ = ['./mmn_sysu.py']
protocol_base = 'regdb'
