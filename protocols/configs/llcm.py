# LLCM protocol base: what every method shares (docs/protocols.md, "LLCM"). A method config names it
# with `protocol_base = 'llcm'`; the harness lays the method config over this file and refuses to
# run a leaderboard entry that changes anything here (except `data_root`). Runtime settings
# (logging, checkpoints, visualizer, hooks, environment) are in _runtime.py and may change freely.
_base_ = ['./_runtime.py']
default_scope = 'harness'

# Protocol fields; unset ones take the defaults of protocols.evaluation.LLCM_PROTOCOL (the one place
# they are written): both directions as ZYK100/LLCM DEEN/test.py computes them (ir2vis: every
# infrared test image ranks one sampled visible image per identity and camera; vis2ir: one sampled
# infrared image per identity and camera ranks every visible test image), ten draws seeded 0..9.
protocol = dict(dataset='llcm')

# The reported model is the final epoch's; no test-set model selection.
selection = dict(rule='final')

randomness = dict(seed=0)

# Where the dataset lives on this machine (not a protocol field: --data-root overrides it).
data_root = 'data/LLCM'
