"""Learning-rate schedules of the official VI-ReID code that mmengine's built-ins cannot express.

AGW (and MMN, CAJ, DEEN, which copy its ``adjust_learning_rate``) sets, at the start of epoch
``e`` (0-based), ``lr = base * (e + 1) / warmup`` for ``e < warmup`` and then
``base * gamma ** (number of milestones <= e)``. mmengine's ``LinearLR`` cannot reproduce the
warm-up: it starts at ``start_factor`` and reaches ``end_factor`` only one step *after* its
``end``, and it refuses ``end_factor > 1`` (the value that would fix the off-by-one).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler

from harness.registry import PARAM_SCHEDULERS


def warmup_multistep_factor(
    step: int, warmup: int, milestones: Sequence[int], gamma: float
) -> float:
    """The multiplier of the base value at ``step`` (0-based, counted from the scheduler's
    begin)."""
    if step < warmup:
        return (step + 1) / warmup
    return gamma ** bisect_right(sorted(milestones), step)


class WarmupMultiStepParamScheduler(_ParamScheduler):
    """Closed-form ``(s + 1) / warmup`` ramp, then a ``gamma`` decay at every milestone.

    Every param group scales its own initial value, so per-group ratios set by ``paramwise_cfg``
    (AGW: backbone at 0.1x) are kept, as in the official code. Milestones are absolute steps
    counted from ``begin`` (epochs when ``by_epoch=True``, the AGW usage); ``warmup=0`` disables
    the ramp.
    """

    def __init__(
        self,
        optimizer,
        param_name: str,
        warmup: int = 10,
        milestones: Sequence[int] = (20, 50),
        gamma: float = 0.1,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        if warmup < 0:
            raise ValueError(f'warmup must be >= 0 steps, got {warmup}')
        if any(m < warmup for m in milestones):
            raise ValueError(
                f'milestones {list(milestones)} must not fall inside the {warmup}-step warm-up'
            )
        if not 0 < gamma <= 1:
            raise ValueError(f'gamma must be in (0, 1], got {gamma}')
        self.warmup = int(warmup)
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = float(gamma)
        super().__init__(
            optimizer,
            param_name,
            begin=begin,
            end=end,
            last_step=last_step,
            by_epoch=by_epoch,
            verbose=verbose,
        )

    def _get_value(self) -> list[float]:
        factor = warmup_multistep_factor(self.last_step, self.warmup, self.milestones, self.gamma)
        return [base * factor for base in self.base_values]


@PARAM_SCHEDULERS.register_module()
class WarmupMultiStepLR(LRSchedulerMixin, WarmupMultiStepParamScheduler):
    """AGW's ``adjust_learning_rate`` as an mmengine scheduler (``type='WarmupMultiStepLR'``).

    AGW config: ``dict(type='WarmupMultiStepLR', warmup=10, milestones=[20, 50], gamma=0.1,
    by_epoch=True)`` gives factors 0.1, 0.2, ..., 1.0 for epochs 0..9, 1 for 10..19, 0.1 for
    20..49 and 0.01 from 50 on.
    """
