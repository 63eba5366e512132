"""mmengine's Runner with the harness's checkpoint rules.

mmengine reads checkpoints itself (``load_from``, ``resume``) with ``torch.load`` and no
``weights_only`` argument, and loads their weights non-strictly (a key mismatch is a logged
warning). This Runner reads them through :mod:`harness.checkpoints` instead (``weights_only=True``
unless ``trusted``; strict keys and shapes), and writes every checkpoint atomically, so a crash or
a full disk never leaves a truncated ``epoch_<n>.pth`` behind.
"""

from __future__ import annotations

import os.path as osp
from collections.abc import Callable, Sequence
from typing import Any

from mmengine.dist import master_only
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from harness.checkpoints import CheckpointError, load_checkpoint, load_weights, replace_atomically


class HarnessRunner(Runner):
    """A Runner whose checkpoint reads are safe and strict and whose writes are atomic.

    Set after construction (the Runner's constructor takes no extra arguments):
    ``trusted`` (read checkpoints with ``weights_only=False``), ``method`` and ``config_file``
    (named in a mismatch message).
    """

    trusted: bool = False
    method: str | None = None
    config_file: str | None = None
    _resuming: bool = False

    def resume(
        self,
        filename: str,
        resume_optimizer: bool = True,
        resume_param_scheduler: bool = True,
        map_location: str | Callable = 'default',
    ) -> None:
        self._resuming = True
        try:
            super().resume(filename, resume_optimizer, resume_param_scheduler, map_location)
        finally:
            self._resuming = False

    def load_checkpoint(
        self,
        filename: str,
        map_location: str | Callable = 'cpu',
        strict: bool = False,
        revise_keys: Sequence[tuple[str, str]] = ((r'^module.', ''),),
    ) -> dict:
        # Read on the CPU: load_state_dict copies weights to the model's device and the optimizer
        # moves its state to its parameters' device.
        ckpt = load_checkpoint(filename, trusted=self.trusted, map_location='cpu')
        raw = (
            ckpt.raw
            if isinstance(ckpt.raw, dict) and 'state_dict' in ckpt.raw
            else dict(state_dict=ckpt.state_dict, meta={})
        )
        if self._resuming and not all(k in raw for k in ('meta', 'message_hub')):
            raise CheckpointError(
                f'{filename} holds weights only, not the training state a resume '
                'needs (epoch, optimizer); start the run without --resume, or '
                'test the weights with `vireid test CONFIG CHECKPOINT`'
            )
        self.call_hook('after_load_checkpoint', checkpoint=raw)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        load_weights(model, ckpt, method=self.method, config=self.config_file)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return raw

    @master_only
    def save_checkpoint(
        self,
        out_dir: str,
        filename: str,
        file_client_args: dict | None = None,
        save_optimizer: bool = True,
        save_param_scheduler: bool = True,
        meta: dict | None = None,
        by_epoch: bool = True,
        backend_args: dict | None = None,
    ) -> None:
        save = super().save_checkpoint

        def write(tmp: str) -> Any:
            return save(
                osp.dirname(tmp),
                osp.basename(tmp),
                file_client_args,
                save_optimizer,
                save_param_scheduler,
                meta,
                by_epoch,
                backend_args,
            )

        replace_atomically(write, osp.join(out_dir, filename))
