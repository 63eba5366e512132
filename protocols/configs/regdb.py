# RegDB protocol base: what every method shares (docs/protocols.md). A method config names it with
# `protocol_base = 'regdb'`; the harness lays the method config over this file and refuses to run a
# leaderboard entry that changes anything here (except `data_root` and `protocol.split`). Runtime
# settings (logging, checkpoints, visualizer, hooks, environment) are in _runtime.py.
_base_ = ['./_runtime.py']
default_scope = 'harness'

# Protocol fields; unset ones take the defaults of protocols.evaluation.REGDB_PROTOCOL: one model
# per train/test split (split 1..10; the leaderboard trains all ten), both directions (v2t, t2v),
# the gallery is every test image of the other modality.
protocol = dict(dataset='regdb', split=1)

# The reported model is the final epoch's; no test-set model selection.
selection = dict(rule='final')

randomness = dict(seed=0)

# Runtime, not protocol (see _runtime.py): RegDB epochs are short, so log more often.
log = dict(interval=20)

data_root = 'data/RegDB'
