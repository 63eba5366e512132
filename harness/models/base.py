"""The model contract every method implements (see README "Adding a method").

Training batches (built by the harness data pipeline) arrive as
``inputs: Tensor[B, 3, H, W]`` (float, normalised by :class:`ReIDDataPreprocessor`) and
``data_samples: dict`` of ``Tensor[B]`` with keys ``label`` (0..C-1), ``modality``
(:class:`protocols.datasets.base.Modality`), ``cam`` and ``index``. The cross-modality sampler
lays a batch out as ``[visible block | infrared block]``, each block identity-major with the same
identity order, so ``inputs[:B//2]`` and ``inputs[B//2:]`` are the two modalities.

Training logs: mmengine sums every ``loss*`` value; a method also logs the training accuracy of
its identity classifier as ``acc_id`` (:func:`id_accuracy`), the one name every method uses.

Test batches never mix modalities (the harness groups them), so ``extract_feat`` receives one
modality code for the whole batch; two-stream models use it to pick their stem. Callers may name
it as ``0``/``'visible'`` or ``1``/``'infrared'`` (``'thermal'``, ``'ir'``); the base class turns
every spelling into a :class:`~protocols.datasets.base.Modality` before a method's
``extract_feat`` runs, so methods see one convention and never parse it themselves.
"""

from __future__ import annotations

import functools
from abc import abstractmethod
from typing import Any

import numpy as np
import torch
from mmengine.model import BaseModel
from torch import Tensor

from protocols.datasets.base import Modality

MODALITY_NAMES = {
    'visible': Modality.VISIBLE,
    'rgb': Modality.VISIBLE,
    'infrared': Modality.INFRARED,
    'ir': Modality.INFRARED,
    'thermal': Modality.INFRARED,
}


def as_modality(value: Any) -> Modality:
    """``value`` as a :class:`Modality`: 0/1, a name in :data:`MODALITY_NAMES`, a one-value
    tensor."""
    if isinstance(value, Tensor):
        values = torch.unique(value)
        if values.numel() != 1:
            raise ValueError(f'modality: one value per batch expected, got {values.tolist()}')
        value = int(values.item())
    if isinstance(value, str):
        named = MODALITY_NAMES.get(value.strip().lower())
        if named is not None:
            return named
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value in (0, 1):
        return Modality(int(value))
    raise ValueError(
        f'modality must be 0 or "visible", 1 or "infrared" (also "thermal", "ir"), got {value!r}'
    )


class VIReIDModel(BaseModel):
    """Base class: ``forward`` dispatch for mmengine, ``extract_feat`` for the evaluator.

    ``gathers_global_batch``: set it to True in a subclass whose losses that compare samples
    (triplet, centre losses, ...) run on :func:`harness.dist.gather_batch` of their inputs, so that
    a run on several GPUs trains the one-GPU recipe; runs of other models on several GPUs are
    recorded as not comparable.
    """

    gathers_global_batch: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get('extract_feat')
        if own is None or getattr(own, '__isabstractmethod__', False):
            return

        @functools.wraps(own)
        def extract_feat(
            self: VIReIDModel, images: Tensor, modality: Any, *args: Any, **kw: Any
        ) -> Tensor:
            return own(self, images, as_modality(modality), *args, **kw)

        cls.extract_feat = extract_feat

    def __init__(self, data_preprocessor: dict | None = None, init_cfg: dict | None = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor or dict(type='harness.ReIDDataPreprocessor'),
            init_cfg=init_cfg,
        )

    @abstractmethod
    def extract_feat(self, images: Tensor, modality: Modality) -> Tensor:
        """Test feature ``Tensor[B, D]`` of a batch of one modality (0 visible, 1 infrared)."""

    @abstractmethod
    def loss(self, inputs: Tensor, data_samples: dict[str, Tensor]) -> dict[str, Tensor]:
        """Training losses; mmengine sums every value whose key starts with ``loss``."""

    def forward(
        self, inputs: Tensor, data_samples: dict[str, Tensor] | None = None, mode: str = 'tensor'
    ) -> Any:
        if mode == 'loss':
            if data_samples is None:
                raise ValueError('mode="loss" needs data_samples with label/modality/cam')
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.extract_feat(inputs, batch_modality(data_samples))
        raise ValueError(f'unknown forward mode {mode!r}; expected "loss", "predict" or "tensor"')

    @torch.no_grad()
    def predict(self, inputs: Tensor, data_samples: dict[str, Tensor] | None) -> list[dict]:
        # Features stay on the device: no per-batch wait for it; the evaluator gathers them there.
        feats = self.extract_feat(inputs, batch_modality(data_samples)).float()
        indices = data_samples['index'].tolist() if data_samples is not None else range(len(feats))
        return [dict(feat=f, index=int(i)) for f, i in zip(feats, indices)]


def batch_modality(data_samples: dict[str, Tensor] | None) -> int:
    """The single modality of a test batch; refuses mixed batches (they would pick one stem)."""
    if data_samples is None or 'modality' not in data_samples:
        raise ValueError(
            'feature extraction needs data_samples["modality"] (0 visible, 1 infrared)'
        )
    modality = data_samples['modality']
    if not isinstance(modality, Tensor):
        return int(modality)
    values = torch.unique(modality)
    if values.numel() != 1:
        raise ValueError(
            f'a test batch mixes modalities {values.tolist()}; '
            'use the harness test dataloader, which groups images by modality'
        )
    return int(values.item())


def id_accuracy(logits: Tensor, labels: Tensor) -> Tensor:
    """Training accuracy of an identity classifier (logged as ``acc_id``), detached."""
    return (logits.argmax(dim=1) == labels).float().mean().detach()


def check_count(key: str, value: int, minimum: int, why: str = '') -> None:
    """Refuse a model's count argument (``num_classes``, ``num_stripes``, ...) below ``minimum``,
    naming its config key ``model.<key>``, the minimum and why it is needed."""
    if value < minimum:
        because = f' ({why})' if why else ''
        raise ValueError(f'model.{key} must be >= {minimum}{because}, got {value}')
