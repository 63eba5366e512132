"""The official run: the released checkpoint converted onto a config's model and scored like every
other run (``source='official'``)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.official.fetch import _by_hand, fetch_released, md5_of
from harness.official.release import (
    CONVERTED,
    DOWNLOADS,
    TRUST_REASON,
    OfficialError,
    dataset_target,
    find_released,
)


def _target_state(cfg: Any) -> tuple[dict, int]:
    """The state dict of ``cfg``'s freshly built model (the converter's target), and its classes."""
    from mmengine.registry import DefaultScope

    from harness.data.datasets import train_set
    from harness.models.pretrained import without_pretrained
    from harness.registry import MODELS

    num_classes = train_set(cfg.protocol['dataset'], cfg.data_root, cfg.protocol).num_classes
    with DefaultScope.overwrite_default_scope('harness'):
        model = MODELS.build(without_pretrained(dict(cfg.model, num_classes=num_classes)))
    return model.state_dict(), num_classes


def score_official(
    config: str,
    work_dir: str,
    data_root: str | None = None,
    cfg_options: Mapping[str, Any] | None = None,
    source: str = 'official',
    checkpoint: str | None = None,
    trusted: bool = False,
    downloads: str | None = None,
    resume: bool = True,
    launcher: str = 'none',
    log_level: str = 'INFO',
    **_: Any,
) -> dict[str, Any]:
    """Score the authors' released checkpoint for ``config`` and write ``work_dir/record.json``.

    ``checkpoint``: the official file (``--official-checkpoint``); ``None``: the release the
    config's method declares for it, taken from ``downloads/<method>/`` or fetched there. The file
    is md5-checked when the release states an md5, converted onto the config's model (strictly:
    every used tensor, exact shapes), saved beside the record as a harness checkpoint and scored
    by :func:`harness.engine.run.score_run` with ``source='official'``.
    """
    from harness.checkpoints import describe_model, save_checkpoint
    from harness.engine.config import config_hash, load_config
    from harness.engine.run import score_run
    from harness.plugins import discover

    if source != 'official':
        raise ValueError(f'score_official scores official checkpoints, got source {source!r}')
    if not trusted:
        raise OfficialError(f'official checkpoint for {config}: {TRUST_REASON}.')
    cfg = load_config(config, cfg_options)
    if data_root is not None:
        cfg.data_root = str(data_root)
    method = cfg.get('entry', {}).get('method')
    dataset = cfg.protocol['dataset']
    split = cfg.protocol.get('split') if dataset == 'regdb' else None
    rel = find_released(
        discover().get(method), config=Path(config).stem, dataset=dataset, split=split
    )
    if checkpoint is None:
        if rel is None:
            target = dataset_target(dataset, split)
            raise OfficialError(
                f'{method} declares no released checkpoint for {Path(config).name} '
                f'({target}); pass the file with '
                f'--official-checkpoint {method}:{target}=PATH'
            )
        path = fetch_released(rel, downloads or Path(work_dir) / DOWNLOADS)
        origin = rel.origin()
    else:
        path = Path(checkpoint)
        origin = dict(kind='file given (--official-checkpoint)', path=str(path.resolve()))
        if rel is not None:
            origin.update(released_as=rel.url, listed_in=rel.listed_in)
    md5 = md5_of(path)
    if checkpoint is None and rel.md5 and md5 != rel.md5:
        raise OfficialError(
            f"{path}: md5 {md5} differs from the released file's {rel.md5}; the "
            f'download is incomplete or another file: delete it and run again, or '
            + _by_hand(rel, path)
        )
    state, num_classes = _target_state(cfg)
    converter, converter_ref = (
        (rel.converter(), rel.onto_model) if rel is not None else _default_converter(method)
    )
    converted = converter(str(path), state, trusted=True)
    work = Path(work_dir)
    meta = describe_model(
        method,
        num_classes,
        Path(config).name,
        config_hash(cfg),
        dataset=dataset,
        converted_from=path.name,
        official_md5=md5,
    )
    save_checkpoint({'state_dict': converted, 'meta': meta}, work / CONVERTED)
    official = dict(
        file=str(path),
        md5=md5,
        expected_md5=rel.md5 if rel else None,
        md5_matches_release=None if not (rel and rel.md5) else md5 == rel.md5,
        bytes=path.stat().st_size,
        origin=origin,
        converted=str(work / CONVERTED),
        converter=converter_ref,
    )
    return score_run(
        config,
        work_dir,
        data_root=data_root,
        cfg_options=cfg_options,
        source='official',
        checkpoint=str(work / CONVERTED),
        launcher=launcher,
        log_level=log_level,
        provenance=dict(official=official),
    )


def _default_converter(method: str) -> tuple[Callable[..., dict], str]:
    """A method without declared releases still converts a given file: its ``released`` module's
    ``onto_model`` when it has one."""
    from harness.plugins import get_method

    spec = get_method(method)
    ref = getattr(spec, 'released', None)
    if ref:
        name = ref.partition(':')[0]
        module = importlib.import_module(name)
        if hasattr(module, 'onto_model'):
            return module.onto_model, f'{name}:onto_model'
    raise OfficialError(
        f'method {method!r} declares no way to read its official checkpoints '
        f"onto a config's model (MethodSpec.released with onto_model)"
    )
