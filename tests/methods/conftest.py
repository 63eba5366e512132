"""Fixtures shared by the method tests: a training batch in the harness layout, one-thread torch."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

Batch = tuple[torch.Tensor, dict[str, torch.Tensor]]


def make_batch(
    num_ids: int = 3, k: int = 2, size: tuple[int, int] = (32, 16), seed: int = 0
) -> Batch:
    """Random images in the harness training layout: ``[visible block | infrared block]``, each
    identity-major with identities ``0 .. num_ids-1`` in the same order, ``k`` images each."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.arange(num_ids).repeat_interleave(k)
    labels = torch.cat([ids, ids])
    modality = torch.cat([torch.zeros(num_ids * k), torch.ones(num_ids * k)]).long()
    images = torch.randn(len(labels), 3, *size, generator=g)
    return images, dict(
        label=labels, modality=modality, cam=modality * 3, index=torch.arange(len(labels))
    )


@pytest.fixture
def batch() -> Callable[..., Batch]:
    """:func:`make_batch`."""
    return make_batch


@pytest.fixture(autouse=True, scope='module')
def _methods_run_on_one_thread(one_thread):
    """Every method test module runs on one intra-op thread (see ``one_thread``)."""
    yield


@pytest.fixture
def derived_config(tmp_path):
    """A config inheriting ``base`` with ``body`` added (a user's config edit), loaded as a run
    loads it: ``derived_config(base, "model = dict(losses=dict(dcl=None))")``."""
    from harness.engine.config import load_config

    made = []

    def make(base, body: str):
        path = tmp_path / f'derived_{len(made)}.py'
        path.write_text(f'_base_ = [{str(base)!r}]\n{body}\n')
        made.append(path)
        return load_config(path)

    return make


@pytest.fixture
def train_losses():
    """``(model, model.loss(...))`` of the model a config's ``model`` dict builds (seeded with 0),
    in training mode, on :func:`make_batch` (``batch`` arguments)."""
    from mmengine.registry import DefaultScope

    from harness.plugins import discover
    from harness.registry import MODELS

    discover()  # every method's model and losses registered

    def run(model_cfg: dict, num_classes: int = 6, prepare=None, **batch) -> tuple:
        torch.manual_seed(0)
        with DefaultScope.overwrite_default_scope('harness'):
            model = MODELS.build(dict(model_cfg, num_classes=num_classes))
        if prepare is not None:
            prepare(model)
        return model, model.train().loss(*make_batch(**batch))

    return run
