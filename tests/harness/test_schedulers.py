"""WarmupMultiStepLR reproduces AGW's adjust_learning_rate per param group, through mmengine."""

import pytest
import torch
from mmengine.registry import DefaultScope

from harness.engine.schedulers import WarmupMultiStepLR
from harness.registry import PARAM_SCHEDULERS


def agw_adjust_learning_rate(base_lr, epoch):
    # transcription of the official rule: (head lr, backbone lr = 0.1 x head lr)
    if epoch < 10:
        lr = base_lr * (epoch + 1) / 10
    elif epoch < 20:
        lr = base_lr
    elif epoch < 50:
        lr = base_lr * 0.1
    else:
        lr = base_lr * 0.01
    return lr, 0.1 * lr


def _optimizer():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    return torch.optim.SGD(
        [{'params': [a], 'lr': 0.1}, {'params': [b], 'lr': 0.01}], lr=0.1, momentum=0.9
    )


def test_matches_agw_schedule_for_81_epochs():
    opt = _optimizer()
    with DefaultScope.overwrite_default_scope('harness'):
        sched = PARAM_SCHEDULERS.build(
            dict(
                type='WarmupMultiStepLR',
                optimizer=opt,
                warmup=10,
                milestones=[20, 50],
                gamma=0.1,
                by_epoch=True,
                begin=0,
            )
        )
    assert isinstance(sched, WarmupMultiStepLR)
    for epoch in range(81):
        head, base = agw_adjust_learning_rate(0.1, epoch)
        assert opt.param_groups[0]['lr'] == pytest.approx(head, rel=1e-12), epoch
        assert opt.param_groups[1]['lr'] == pytest.approx(base, rel=1e-12), epoch
        opt.step()
        sched.step()


def test_resume_from_state_dict_continues_the_schedule():
    opt = _optimizer()
    sched = WarmupMultiStepLR(opt, warmup=3, milestones=[5], gamma=0.5)
    for _ in range(4):
        opt.step()
        sched.step()
    opt2 = _optimizer()
    for g, g_old in zip(opt2.param_groups, opt.param_groups):
        g['initial_lr'] = g_old['initial_lr']
    sched2 = WarmupMultiStepLR(opt2, warmup=3, milestones=[5], gamma=0.5)
    sched2.load_state_dict(sched.state_dict())
    for _ in range(3):
        for s, o in ((sched, opt), (sched2, opt2)):
            o.step()
            s.step()
        assert opt.param_groups[0]['lr'] == opt2.param_groups[0]['lr']
    assert opt.param_groups[0]['lr'] == pytest.approx(0.05)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match='warm-up'):
        WarmupMultiStepLR(_optimizer(), warmup=10, milestones=[5])
    with pytest.raises(ValueError, match='gamma'):
        WarmupMultiStepLR(_optimizer(), warmup=1, milestones=[5], gamma=2.0)
