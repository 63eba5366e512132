"""All figures of one run: retrieval grid + CSV, t-SNE and distance histograms, and the manifest."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from harness.figures import embedding, retrieval
from harness.figures.features import features
from harness.figures.manifest import FIGURES_DIR, MANIFEST, SCHEMA, write_manifest
from harness.figures.source import open_run
from harness.outputs import check_output
from harness.records import RECORD_NAME
from protocols.retrieval import retrieval_setting


def _merge(out: Path, entries: list[dict]) -> list[dict]:
    """This drawing's entries, then earlier ones of other files that are still there."""
    import json

    try:
        old = json.loads((out / MANIFEST).read_text())
        old = (
            old.get('figures', []) if isinstance(old, dict) and old.get('schema') == SCHEMA else []
        )
    except (OSError, json.JSONDecodeError):
        old = []
    names = {e['file'] for e in entries}
    return entries + [
        e
        for e in old
        if isinstance(e, dict)
        and e.get('file') not in names
        and (out / str(e.get('file'))).is_file()
    ]


def draw_figures(
    run_dir: str | Path,
    out: str | Path | None = None,
    *,
    queries: int = 8,
    topk: int = 10,
    ids: int = 8,
    seed: int = 0,
    pick: str = 'random',
    data_root: str | Path | None = None,
    checkpoint: str | Path | None = None,
    device: str | None = None,
    mode: str | None = None,
    shots: int | None = None,
    trial: int | None = None,
    direction: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Draws every figure of ``run_dir`` into ``out`` (default ``RUN_DIR/figures``); returns the
    manifest written there as ``index.json``.

    The grid shows SYSU ``mode`` (all), ``shots`` (1), gallery ``trial`` (0), the RegDB run's
    split in ``direction`` (v2t), or the LLCM ``direction`` (ir2vis) with draw ``trial`` (0);
    options of another dataset are refused.
    """
    import torch

    if topk < 1:
        raise ValueError(f'--topk must be >= 1, got {topk}')
    if pick not in retrieval.PICKS:
        raise ValueError(f'--pick must be one of {", ".join(retrieval.PICKS)}, got {pick!r}')
    source = open_run(run_dir, data_root=data_root, checkpoint=checkpoint)
    wrong = dict(
        sysu={'--direction': direction},
        regdb={'--mode': mode, '--shots': shots, '--trial': trial},
        llcm={'--mode': mode, '--shots': shots},
    )[source.dataset]
    given = [k for k, v in wrong.items() if v is not None]
    if given:
        raise ValueError(
            f'{", ".join(given)} do(es) not apply to {source.dataset} run {source.run_dir}'
        )
    out = Path(out) if out is not None else source.run_dir / FIGURES_DIR
    inputs = [
        ('run config', source.config_path),
        ('run record', source.run_dir / RECORD_NAME),
        ('checkpoint', source.checkpoint),
        ('kept features', source.run_dir / str(source.record.get('features') or 'features.npz')),
    ]
    written = ('retrieval_*.png', 'retrieval_*.csv', 'tsne.png', 'distances.png', MANIFEST)
    check_output(
        '--out',
        out,
        inputs,
        data={'dataset root': source.data_root},
        writes=(*written, 'features/*.npz', 'features/*.json'),
    )
    out.mkdir(parents=True, exist_ok=True)
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if source.record.get('status') not in (None, 'done'):
        log(
            f'[figures] note: {source.run_dir} is not finished (record status '
            f'{source.record.get("status")!r}); drawing from its newest checkpoint'
        )
    cache = out / 'features'
    trained, trained_from = features(source, 'trained', cache, device, use_kept=checkpoint is None)
    log(f'[figures] trained features: {trained_from}')
    untrained, untrained_from = features(source, 'untrained', cache, device)
    log(f'[figures] untrained features: {untrained_from}')

    entries: list[dict[str, Any]] = []
    # Retrieval grid of one protocol setting.
    setting = retrieval_setting(
        source.dataset,
        source.data_root,
        source.protocol,
        source.records,
        trained,
        source.distance,
        mode=mode or 'all',
        shots=shots or 1,
        trial=trial or 0,
        direction=direction or ('ir2vis' if source.dataset == 'llcm' else 'v2t'),
    )
    where = f'split{setting.trial}' if setting.dataset == 'regdb' else f'trial{setting.trial}'
    stem = f'retrieval_{setting.setting}_{where}_{pick}'
    shown = retrieval.draw_retrieval(
        setting,
        source.data_root,
        out / f'{stem}.png',
        out / f'{stem}.csv',
        source.title,
        queries=queries,
        topk=topk,
        pick=pick,
        seed=seed,
        input_size=tuple(source.cfg.input_size),
    )
    entries.append(
        dict(
            file=f'{stem}.png',
            csv=f'{stem}.csv',
            kind='retrieval',
            setting=setting.setting,
            trial=setting.trial,
            caption=f'{len(shown["queries"])} {pick} queries of {setting.setting} ({where}) and '
            f'their top-{topk} gallery images by {source.distance} distance; green: same '
            f'identity, red: another. {shown["rank1_correct"]} of {len(shown["queries"])} are '
            f'right at rank 1.',
            **shown,
        )
    )

    # t-SNE of a few identities, trained beside untrained.
    pids = embedding.select_identities(source.records, ids, seed)
    rows = embedding.select_images(source.records, pids, seed)
    chosen = [source.records[i] for i in rows]
    panels = [
        ('trained', embedding.embed(trained[rows], seed, source.distance)),
        (
            f'untrained (random init, seed {source.seed})',
            embedding.embed(untrained[rows], seed, source.distance),
        ),
    ]
    infrared = embedding.INFRARED_NAME[source.dataset]
    embedding.draw_embedding(
        panels,
        chosen,
        out / 'tsne.png',
        f'{source.title}: t-SNE of {len(pids)} test identities (seed {seed})',
        infrared,
    )
    entries.append(
        dict(
            file='tsne.png',
            kind='embedding',
            identities=pids,
            images=len(rows),
            caption=f't-SNE (seed {seed}) of the test features of {len(pids)} identities '
            f'({len(rows)} images), colour = identity, circle = visible, triangle = {infrared}; '
            f'trained network (left) beside the same network untrained (right).',
        )
    )

    # Same- vs different-identity cross-modality distances over the whole test set.
    hist = []
    for name, feats in (
        ('trained', trained),
        (f'untrained (random init, seed {source.seed})', untrained),
    ):
        same, other = embedding.cross_modality_distances(feats, source.records, source.distance)
        hist.append((name, same, other))
    overlaps = embedding.draw_distances(
        hist,
        out / 'distances.png',
        f'{source.title}: {infrared}-visible distances of the test set',
        source.distance,
        infrared,
    )
    stats = {
        name.split(' ')[0]: dict(
            overlap=round(v, 4), same_mean=float(np.mean(s)), different_mean=float(np.mean(o))
        )
        for (name, s, o), v in zip(hist, overlaps)
    }
    entries.append(
        dict(
            file='distances.png',
            kind='distances',
            **{f'overlap_{k}': v['overlap'] for k, v in stats.items()},
            caption=f'{source.distance} distance of every {infrared}-visible pair of test images, '
            f'same identity vs different identity; overlap of the two histograms '
            f'{overlaps[0]:.2f} trained, {overlaps[1]:.2f} untrained (0 = separated).',
        )
    )

    manifest = dict(
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds'),
        run_dir=str(source.run_dir),
        title=source.title,
        method=source.record.get('method'),
        config=str(source.config_path),
        dataset=source.dataset,
        split=source.protocol.get('split'),
        checkpoint=str(source.checkpoint) if source.checkpoint else None,
        seed=seed,
        run_seed=source.seed,
        distance=source.distance,
        features=dict(trained=trained_from, untrained=untrained_from),
        distances=stats,
        figures=_merge(out, entries),
    )
    write_manifest(out, manifest)
    return {'schema': SCHEMA, **manifest, 'out': str(out)}
