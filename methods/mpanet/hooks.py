"""The epoch-dependent mean-teacher rate of MPANet, set before every training epoch."""

from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from harness.registry import HOOKS


@HOOKS.register_module()
class MPANetEMARateHook(Hook):
    """Calls ``model.set_epoch(e)`` with the 1-based epoch ``e = runner.epoch + 1``.

    The official trainer sets ``update_rate = min(100 / (e + 1), 1) * 0.2`` on ignite's
    EPOCH_STARTED, where ignite's epoch counter is already 1-based (``engine/``). Recomputing it
    each epoch also makes a resumed run use the right rate without storing it in the checkpoint.
    """

    priority = 'NORMAL'

    def before_train_epoch(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'set_epoch'):
            raise TypeError(
                f'MPANetEMARateHook needs a model with set_epoch(epoch) (MPANet), '
                f'got {type(model).__name__}; remove the hook from custom_hooks'
            )
        model.set_epoch(runner.epoch + 1)
