# SYSU-MM01 protocol base: what every method shares (docs/protocols.md). A method config names it
# with `protocol_base = 'sysu'`; the harness lays the method config over this file and refuses to
# run a leaderboard entry that changes anything here (except `data_root`). Runtime settings
# (logging, checkpoints, visualizer, hooks, environment) are in _runtime.py and may change freely.
_base_ = ['./_runtime.py']
default_scope = 'harness'

# Protocol fields; unset ones take the defaults of protocols.evaluation.SYSU_PROTOCOL (the one place
# they are written): IR query (cams 3, 6) -> visible gallery, all- and indoor-search, single- and
# multi-shot, 10 trials drawn from rand_perm_cam.mat (sampler='official').
protocol = dict(dataset='sysu')

# The reported model is the final epoch's; no test-set model selection.
selection = dict(rule='final')

randomness = dict(seed=0)

# Where the dataset lives on this machine (not a protocol field: --data-root overrides it).
data_root = 'data/SYSU-MM01'
