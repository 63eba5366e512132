"""A leaderboard engine for the Slurm tests (``--runner slow_epochs:run_experiment``): the real
``run_experiment``, with a pause after every training epoch.

The demo run trains an epoch in a fraction of a second on an idle machine, so a job cancelled when
its first checkpoint appeared could finish the whole run before Slurm's SIGTERM reached it (the
test then met a finished run: a coin toss decided by the machine's load). The pause, after the
epoch's checkpoint is written, keeps the run training for ``PAUSE_S`` after each checkpoint
whatever the machine's speed; it changes no number and no config (the record's config hash and
scores are those of the real engine).
"""

from __future__ import annotations

import time

from mmengine.hooks import Hook

import harness.engine.run as engine

PAUSE_S = 5.0


class PauseAfterEpoch(Hook):
    def after_train_epoch(self, runner) -> None:
        time.sleep(PAUSE_S)


def run_experiment(**kwargs):
    from harness.plugins import discover

    discover()  # the worker loads the plugins itself only for its default engines
    build = engine.build_runner

    def build_paused(*args, **kw):
        runner = build(*args, **kw)
        runner.register_hook(PauseAfterEpoch(), priority='LOWEST')  # after the checkpoint hook
        return runner

    engine.build_runner = build_paused
    try:
        return engine.run_experiment(**kwargs)
    finally:
        engine.build_runner = build
