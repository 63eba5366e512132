"""Losses by config: a model computes named inputs, the config's losses consume them by name.

Every model trains with a :class:`LossSet` built from the ``losses`` section of its config::

    losses=dict(
        id=dict(type='IdentityLoss', input='logits', parts='mean'),
        tri=dict(type='BatchHardTripletLoss', input='pool', parts='mean', margin=0.3,
                 modalities=[[0, 1], [0, 3], [2, 1], [2, 3]]),
        dcl=dict(type='DistributionConsistencyLoss', input='pool', parts='mean',
                 modalities=[2, 3], weight=0.2),
    )

Each entry is a registered loss (``type`` and its own arguments) plus four keys the set reads:

- ``input``: the name of the model output the loss is computed on, or a list of names for a loss
  that takes several (MPANet's mutual-mean KL: ``['modality_logits', 'teacher_logits']``). A model
  lists the names it computes (``CrossModalityReID``: ``pool``, ``bn``, ``logits``); each method's
  README lists its own.
- ``weight`` (default 1.0): the loss is logged as ``loss_<name>``, already multiplied by it.
- ``parts``: required for part-level inputs ``[N, C, P]`` (one feature per horizontal stripe),
  refused for the others: ``'sum'`` or ``'mean'`` runs the loss on every part and adds or averages
  the values; ``'concat'`` runs it once on the parts concatenated part by part (``[N, P*C]``).
- ``modalities``: run the loss only on the rows of these modality codes, taken code by code in the
  listed order (``[2, 3]``: the rows of code 2, then those of code 3); a list of such lists runs it
  once per group and averages the values. Codes 0 and 1 are visible and infrared; a model may add
  its own for images it generates (MMN's middle-modality images, the two-stream MHSA's auxiliary
  images), listed in its README.

``name=None`` removes a loss a base config declared (``losses=dict(hc=None)``).

Calling convention of a loss: ``loss(*inputs, labels)``, with ``labels`` left out when its class
sets ``takes_labels = False`` (a loss on masks, on pairs of rows, on two classifiers' outputs) and
``modality=`` (the rows' codes) added when it sets ``takes_modality = True``. It returns a scalar or
``(scalar, n_correct)``, where ``n_correct`` counts the anchors it ranks correctly (logged as
``acc_<name>``, the fraction over every row it was computed on). Under DDP every loss sees the
rows of the whole batch (:func:`harness.dist.gather_batch`), except those whose class sets
``per_sample = True`` (a mean of per-row terms: each process's share is enough).

A model fills in what it knows for the losses that take it (``default_args``: MMN gives ``in_dim``,
the width of its features, to the DCL projection head); a value in the config wins.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from harness.dist import gather_batch
from harness.models.necks.parts import split_parts
from harness.registry import MODELS

PART_REDUCTIONS = ('sum', 'mean', 'concat')


@dataclass
class LossInputs:
    """What a model hands its :class:`LossSet` for one training batch.

    ``tensors``: named outputs, each with one row per training sample (``[N, ...]``; part-level
    ones ``[N, C, P]``). ``labels`` and ``modality``: ``[N]`` identity labels and modality codes of
    those rows. ``blocks``: the rows form this many equal blocks, one per modality (``[visible |
    infrared]``: 2; MMN's ``[V | M_V | I | M_I]``: 4), which is how :func:`gather_batch` restores
    the global batch under DDP.
    """

    tensors: dict[str, Tensor]
    labels: Tensor
    modality: Tensor
    blocks: int = 2


class LossSet(nn.ModuleDict):
    """The weighted losses of a model, built from its config's ``losses`` section (see the module
    docstring for the keys).

    A :class:`~torch.nn.ModuleDict` of the loss modules (``model.losses['tri']``; parameters of a
    trainable loss live under ``losses.<name>``), with the set's own keys in ``inputs``,
    ``weights``, ``parts`` and ``modalities`` (dicts by loss name).

    Args:
        specs: ``{name: dict(type=..., input=..., weight=1.0, [parts=...], [modalities=...],
            **loss_args)}``; ``None`` entries are skipped.
        inputs: the names the model computes.
        part_inputs: those of them that are part-level ``[N, C, P]``.
        default_args: arguments the model knows, given to every loss whose constructor takes them
            and whose spec does not set them.
        where: the config path, for error messages.
    """

    # The keys the set takes out of each spec before building the loss from the rest: a model
    # with a ``losses`` section declares them as its ``subconfig_keys`` so that the config check
    # (harness.engine.config) knows them beside each loss's own arguments.
    SPEC_KEYS = ('input', 'weight', 'parts', 'modalities')

    def __init__(
        self,
        specs: Mapping[str, Mapping[str, Any] | None],
        inputs: Iterable[str],
        part_inputs: Iterable[str] = (),
        default_args: Mapping[str, Any] | None = None,
        where: str = 'model.losses',
    ) -> None:
        super().__init__()
        self.known = tuple(inputs)
        self.part_inputs = frozenset(part_inputs)
        self.inputs: dict[str, str | tuple[str, ...]] = {}
        self.weights: dict[str, float] = {}
        self.parts: dict[str, str] = {}
        self.modalities: dict[str, list[list[int]]] = {}
        if not isinstance(specs, Mapping):
            raise ValueError(
                f'{where} must be a dict of named losses, e.g. '
                f"dict(id=dict(type='IdentityLoss', input='logits')), got {specs!r}"
            )
        for name, spec in specs.items():
            if spec is None:
                continue  # removed by a derived config
            self._add(str(name), spec, dict(default_args or {}), f'{where}.{name}')
        if not len(self):
            raise ValueError(
                f'{where} is empty; give at least one loss, e.g. '
                "id=dict(type='IdentityLoss', input='logits')"
            )

    # ------------------------------------------------------------------ construction
    def _add(self, name: str, spec: Mapping[str, Any], defaults: dict, where: str) -> None:
        if not isinstance(spec, Mapping) or 'type' not in spec:
            raise ValueError(
                f'{where} must be a dict with a registered loss type=... '
                f"(e.g. type='IdentityLoss'), or None to remove it; got {spec!r}"
            )
        if not name.isidentifier():
            raise ValueError(f'{where}: the loss name {name!r} must be an identifier (a-z, 0-9, _)')
        if hasattr(self, name) and name not in self:
            raise ValueError(
                f'{where}: {name!r} is taken by the loss set itself (an attribute of LossSet); '
                'give the loss another name'
            )
        spec = dict(spec)
        names = self._input_names(spec.pop('input', None), where)
        weight = spec.pop('weight', 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise ValueError(f'{where}.weight must be a number, got {weight!r}')
        parts = spec.pop('parts', None)
        self._check_parts(names, parts, where)
        groups = self._modality_groups(spec.pop('modalities', None), where)
        accepted = constructor_arguments(spec['type'])
        for key, value in defaults.items():
            if key not in spec and (accepted is None or key in accepted):
                spec[key] = value
        self[name] = MODELS.build(spec)
        self.inputs[name] = names[0] if len(names) == 1 else tuple(names)
        self.weights[name] = float(weight)
        if parts is not None:
            self.parts[name] = parts
        if groups is not None:
            self.modalities[name] = groups

    def _input_names(self, value: Any, where: str) -> list[str]:
        names = [value] if isinstance(value, str) else value
        if (
            not isinstance(names, Sequence)
            or not names
            or not all(isinstance(n, str) for n in names)
        ):
            raise ValueError(
                f'{where}.input must name what the loss is computed on: one of {self.known}, '
                f'or a list of them; got {value!r}'
            )
        unknown = [n for n in names if n not in self.known]
        if unknown:
            raise ValueError(
                f'{where}.input = {value!r}: the model computes no {unknown[0]!r}; '
                f'expected one of {self.known}'
            )
        return list(names)

    def _check_parts(self, names: list[str], parts: Any, where: str) -> None:
        part_level = [n in self.part_inputs for n in names]
        if parts is None:
            if any(part_level):
                raise ValueError(
                    f'{where}: input {names[part_level.index(True)]!r} has one feature per part '
                    f"[N, C, P]; set parts='sum' or 'mean' (the loss on every part) or 'concat' "
                    '(once, on the concatenated parts)'
                )
            return
        if parts not in PART_REDUCTIONS:
            raise ValueError(f'{where}.parts must be one of {PART_REDUCTIONS}, got {parts!r}')
        if not all(part_level):
            raise ValueError(
                f'{where}.parts = {parts!r}, but input {names[part_level.index(False)]!r} is not '
                f'part-level (the part-level inputs are {sorted(self.part_inputs)}); remove parts'
            )

    @staticmethod
    def _modality_groups(value: Any, where: str) -> list[list[int]] | None:
        if value is None:
            return None

        def codes(group: Any) -> list[int] | None:
            if isinstance(group, Sequence) and group and not isinstance(group, str):
                if all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in group):
                    return [int(c) for c in group]
            return None

        flat = codes(value)
        groups = [flat] if flat is not None else None
        if groups is None and isinstance(value, Sequence) and value and not isinstance(value, str):
            groups = [codes(g) for g in value]
        if not groups or any(g is None or len(set(g)) != len(g) for g in groups):
            raise ValueError(
                f'{where}.modalities must be a list of distinct modality codes (e.g. [0]: the '
                'visible rows) or a list of such lists (the loss is averaged over them), '
                f'got {value!r}'
            )
        return groups

    # ------------------------------------------------------------------ training
    @property
    def consumed(self) -> set[str]:
        """Names of the inputs some loss reads (a model may skip computing the others)."""
        out: set[str] = set()
        for names in self.inputs.values():
            out.update((names,) if isinstance(names, str) else names)
        return out

    def forward(
        self, batch: LossInputs, gather: Callable[..., Tensor] = gather_batch
    ) -> dict[str, Tensor]:
        """``loss_<name>`` (weighted) for every loss, and ``acc_<name>`` for those that count their
        correctly ranked anchors. ``gather`` collects the global batch under DDP."""
        n_rows = len(batch.labels)
        for name in sorted(self.consumed):
            x = batch.tensors.get(name)
            if x is None:
                raise KeyError(
                    f'the model computed no {name!r} for its losses (it gave '
                    f'{sorted(batch.tensors)}); this is a bug of the model'
                )
            if x.shape[0] != n_rows:
                raise ValueError(
                    f'loss input {name!r} has {x.shape[0]} rows for {n_rows} labels; every input '
                    'needs one row per training sample'
                )
        out: dict[str, Tensor] = {}
        gathered: dict[str, Tensor] = {}
        selections: dict[tuple[int, ...], Tensor] = {}  # row indices of modality groups, reused

        def global_rows(name: str) -> Tensor:
            if name not in gathered:
                gathered[name] = gather(_rows_of(batch, name), blocks=batch.blocks)
            return gathered[name]

        for name, loss in self.items():
            names = self.inputs[name]
            names = (names,) if isinstance(names, str) else names
            local = getattr(loss, 'per_sample', False)
            fetch = (lambda n: _rows_of(batch, n)) if local else global_rows
            xs = [fetch(n) for n in names]
            labels, modality = fetch(LABELS), fetch(MODALITY)
            rows = None
            if name in self.modalities:
                rows = []
                for group in self.modalities[name]:
                    key = (int(local), *group)
                    if key not in selections:
                        selections[key] = torch.cat(
                            [torch.nonzero(modality == c).flatten() for c in group]
                        )
                    rows.append(selections[key])
            value, accuracy = self._evaluate(name, loss, xs, labels, modality, rows)
            out[f'loss_{name}'] = self.weights[name] * value
            if accuracy is not None:
                out[f'acc_{name}'] = accuracy
        return out

    def _evaluate(
        self,
        name: str,
        loss: nn.Module,
        xs: list[Tensor],
        labels: Tensor,
        modality: Tensor,
        selections: list[Tensor] | None,
    ) -> tuple[Tensor, Tensor | None]:
        """The loss over its parts and modality groups: summed part by part, group by group, then
        divided by the number of groups (and of parts for ``parts='mean'``)."""
        parts = self.parts.get(name)
        if parts is None:
            views = [xs]
        elif parts == 'concat':
            views = [[x.transpose(1, 2).flatten(1) for x in xs]]
        else:
            views = [list(part) for part in zip(*(split_parts(x) for x in xs))]
        takes_labels = getattr(loss, 'takes_labels', True)
        takes_modality = getattr(loss, 'takes_modality', False)
        total: Tensor | None = None
        correct: Tensor | None = None
        ranked = 0
        for part in views:
            for rows in selections or [None]:
                args = part if rows is None else [x[rows] for x in part]
                y = labels if rows is None else labels[rows]
                if takes_labels:
                    args = [*args, y]
                kwargs = {}
                if takes_modality:
                    kwargs['modality'] = modality if rows is None else modality[rows]
                value = loss(*args, **kwargs)
                if isinstance(value, tuple):
                    value, n_correct = value
                    correct = n_correct if correct is None else correct + n_correct
                    ranked += len(y)
                total = value if total is None else total + value
        count = len(selections or [None]) * (len(views) if parts == 'mean' else 1)
        if count > 1:
            total = total / count
        accuracy = None if correct is None else correct.float() / ranked
        return total, accuracy


LABELS, MODALITY = '_labels', '_modality'  # the rows' labels and codes, gathered like the inputs


def _rows_of(batch: LossInputs, name: str) -> Tensor:
    if name == LABELS:
        return batch.labels
    if name == MODALITY:
        return batch.modality
    return batch.tensors[name]


def constructor_arguments(loss_type: Any) -> set[str] | None:
    """Keyword arguments the registered ``loss_type`` takes (``None``: any, or unknown)."""
    cls = MODELS.get(loss_type) if isinstance(loss_type, str) else loss_type
    if cls is None:
        raise KeyError(f'{loss_type!r} is not a registered loss (harness.registry.MODELS)')
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def config_losses(path: str | Path) -> dict[str, dict | None]:
    """The ``model.losses`` section of a config file (a fresh copy): a method's default loss set is
    the one its full config declares, so the recipe is written down once."""
    return copy.deepcopy(_config_losses(str(path)))


@cache
def _config_losses(path: str) -> dict[str, Any]:
    from mmengine.config import Config

    losses = Config.fromfile(path).model.get('losses')
    if not losses:
        raise ValueError(f'{path} declares no model.losses')
    return {k: (None if v is None else v.to_dict()) for k, v in losses.items()}
