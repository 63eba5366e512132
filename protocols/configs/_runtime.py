# Runtime settings every run shares: how it logs, keeps checkpoints, visualises and uses the
# machine. They never change a result, so a method config or `--cfg-options` may change them and
# the run stays comparable; the harness passes them on to the mmengine Runner. The protocol fields
# (what is trained and tested, and how) are in sysu.py and regdb.py, which include this file.

# LoggerHook interval (iterations) and CheckpointHook settings (epochs between checkpoints, how
# many to keep). e.g. --cfg-options log.interval=10 checkpoint.max_keep_ckpts=5
log = dict(interval=50)
checkpoint = dict(interval=1, max_keep_ckpts=2)

# mmengine's default hooks (these are its defaults); `log` and `checkpoint` above fill the logger's
# and checkpoint hook's arguments, and what is set here wins,
# e.g. --cfg-options default_hooks.logger.interval=10 default_hooks.checkpoint.save_last=False
default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    logger=dict(type='LoggerHook'),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook'),
)

# Where logged scalars go. Add TensorBoard (needs the `tensorboard` package) with
# --cfg-options visualizer.vis_backends=[LocalVisBackend,TensorboardVisBackend]
visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=True)

# cuDNN autotuning, worker start method, distributed backend (None: nccl on GPUs, else gloo).
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork'),
               dist_cfg=dict(backend=None))

# Deterministic kernels (slower, bit-exact on one machine). The seed is a protocol field.
randomness = dict(deterministic=False)
