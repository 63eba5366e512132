"""Features of the test images -> every protocol setting's metrics (used by ``vireid score`` and the
engine).

Features are given once for every image the protocol needs (:func:`test_records`). One distance
matrix query x candidates is computed, every query is ranked against every candidate once
(:class:`protocols.ranking.CandidatePool`), and each SYSU trial / RegDB direction only reads its
gallery from that (or transposes): nothing is extracted, computed or sorted twice. LLCM ranks every
infrared test image against every visible one once: an IR→VIS trial reads its sampled visible
gallery from that, a VIS→IR trial (test.py's computation: the sampled infrared images are the
probes) reads the rows of its sampled probes. Features given as torch tensors are evaluated on
their device (:mod:`protocols.device`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from protocols.datasets import DATASETS, load_dataset
from protocols.datasets.base import ImageRecord, Modality
from protocols.datasets.llcm import LLCM
from protocols.datasets.regdb import TRIALS as REGDB_SPLITS
from protocols.datasets.regdb import RegDB
from protocols.datasets.sysu import GALLERY_CAMS, SYSUMM01
from protocols.metrics import (
    DISTANCE_METRICS,
    ProtocolResult,
    pairwise_distance,
    summarize,
    trial_metrics,
)
from protocols.ranking import CandidatePool, rank_gallery
from protocols.trials import (
    LLCM_CONVENTIONAL,
    LLCM_DIRECTIONS,
    LLCM_NUM_TRIALS,
    LLCM_SETTINGS,
    REGDB_DIRECTIONS,
    SYSU_MODES,
    SYSU_NUM_TRIALS,
    SYSU_SAMPLERS,
    SYSU_SHOTS,
    llcm_draws,
    load_rand_perm,
    regdb_query_gallery,
    sysu_galleries,
    sysu_setting,
)

# The protocol every method shares; protocol base configs hold exactly these keys.
SYSU_PROTOCOL = dict(
    dataset='sysu',
    modes=('all', 'indoor'),
    shots=(1, 10),
    trials=SYSU_NUM_TRIALS,
    sampler='official',
    max_rank=20,
)
REGDB_PROTOCOL = dict(dataset='regdb', split=1, directions=('v2t', 't2v'), max_rank=20)
# LLCM: both directions as DEEN's test.py computes them, ten draws seeded 0..9 (test.py:198-205).
LLCM_PROTOCOL = dict(
    dataset='llcm', directions=LLCM_DIRECTIONS, trials=LLCM_NUM_TRIALS, max_rank=20
)
PROTOCOLS = {'sysu': SYSU_PROTOCOL, 'regdb': REGDB_PROTOCOL, 'llcm': LLCM_PROTOCOL}

Dataset = SYSUMM01 | RegDB | LLCM


# --------------------------------------------------------------------------------------------------
# Protocol dicts


def _choices(key: str, value: Any, allowed: Sequence, dataset: str) -> tuple:
    values = (value,) if isinstance(value, (str, int)) else value
    try:
        values = tuple(values)
    except TypeError:
        raise ValueError(
            f'{dataset} protocol: {key} must be a list of {list(allowed)}, got {value!r}'
        ) from None
    bad = [v for v in values if v not in allowed or isinstance(v, bool)]
    if not values or bad or len(set(values)) != len(values):
        raise ValueError(
            f'{dataset} protocol: {key}={value!r} is invalid; expected a non-empty list without '
            f'repeats taken from {list(allowed)}'
        )
    return values


def _integer(key: str, value: Any, low: int, high: int | None, dataset: str) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < low
        or (high is not None and value > high)
    ):
        span = f'{low}..{high}' if high is not None else f'>= {low}'
        raise ValueError(f'{dataset} protocol: {key} must be an integer in {span}, got {value!r}')
    return int(value)


def check_protocol(dataset: str, protocol: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Validated copy of ``protocol`` with missing keys taken from the dataset's default
    protocol."""
    if dataset not in PROTOCOLS:
        raise ValueError(f'unknown dataset {dataset!r}; expected one of {", ".join(DATASETS)}')
    defaults = PROTOCOLS[dataset]
    protocol = dict(protocol or {})
    unknown = sorted(set(protocol) - set(defaults))
    if unknown:
        raise ValueError(
            f'{dataset} protocol: unknown key(s) {unknown}; allowed keys: {sorted(defaults)}'
        )
    out = {**defaults, **protocol}
    if out['dataset'] != dataset:
        raise ValueError(
            f'protocol is for dataset {out["dataset"]!r} but {dataset!r} is evaluated; '
            f'use the {dataset} protocol config'
        )
    out['max_rank'] = _integer('max_rank', out['max_rank'], 1, None, dataset)
    if dataset == 'sysu':
        out['modes'] = _choices('modes', out['modes'], SYSU_MODES, dataset)
        out['shots'] = _choices('shots', out['shots'], tuple(SYSU_SHOTS), dataset)
        out['trials'] = _integer('trials', out['trials'], 1, SYSU_NUM_TRIALS, dataset)
        if out['sampler'] not in SYSU_SAMPLERS:
            raise ValueError(
                f'sysu protocol: sampler must be one of {list(SYSU_SAMPLERS)}, got '
                f'{out["sampler"]!r}'
            )
    elif dataset == 'llcm':
        out['directions'] = _choices('directions', out['directions'], LLCM_SETTINGS, dataset)
        out['trials'] = _integer('trials', out['trials'], 1, LLCM_NUM_TRIALS, dataset)
    else:
        out['split'] = _integer('split', out['split'], REGDB_SPLITS[0], REGDB_SPLITS[-1], dataset)
        out['directions'] = _choices('directions', out['directions'], REGDB_DIRECTIONS, dataset)
    return out


def settings(dataset: str, protocol: Mapping[str, Any] | None = None) -> list[str]:
    """Names of the result keys :func:`evaluate` returns, in order."""
    p = check_protocol(dataset, protocol)
    if dataset == 'sysu':
        return [sysu_setting(m, s) for m in p['modes'] for s in p['shots']]
    return list(p['directions'])


def _open(dataset: str | Dataset, root: str | Path | None) -> tuple[str, Dataset]:
    if isinstance(dataset, (SYSUMM01, RegDB, LLCM)):
        return dataset.name, dataset
    return dataset, load_dataset(dataset, root)


# --------------------------------------------------------------------------------------------------
# Records and evaluation


def _needed(ds: Dataset, p: dict) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """(query side, gallery side) records; for RegDB (test visible, test thermal) of the split; for
    LLCM (every infrared test image, every visible test image).

    SYSU's gallery side holds the cameras the protocol's search modes draw from (indoor search
    alone: cams 1, 2, as the official AGW test extracts for it).
    """
    if isinstance(ds, SYSUMM01):
        cams = {cam for mode in p['modes'] for cam in GALLERY_CAMS[mode]}
        return ds.query_records(), [r for r in ds.gallery_candidates() if r.cam in cams]
    if isinstance(ds, LLCM):
        return ds.test_images(Modality.INFRARED), ds.test_images(Modality.VISIBLE)
    return regdb_query_gallery(ds, p['split'], 'v2t')


# What each side of _needed is called in error messages.
_SIDES = {
    'sysu': ('query', 'gallery'),
    'regdb': ('test visible', 'test thermal'),
    'llcm': ('test infrared', 'test visible'),
}


def test_records(
    dataset: str | Dataset, root: str | Path | None, protocol: Mapping[str, Any] | None = None
) -> list[ImageRecord]:
    """Every image whose feature the protocol needs, each once, in a deterministic order.

    SYSU: the query (IR of the test ids) then every gallery candidate (visible images of the test
    ids); RegDB: the split's test visible then test thermal images (``pid`` = idx label); LLCM:
    every infrared then every visible test image (each trial samples from them).
    """
    name, ds = _open(dataset, root)
    first, second = _needed(ds, check_protocol(name, protocol))
    return first + second


test_records.__test__ = False  # not a pytest test, although its name starts with "test"


@dataclass(frozen=True)
class SettingInfo:
    """Sizes behind one result: queries, gallery per trial, and the candidate pool."""

    n_query: int
    n_gallery: tuple[int, ...]
    n_candidates: int


def _is_tensor(features: Any) -> bool:
    """A torch tensor (checked without importing torch: numpy users need not load it)."""
    torch = sys.modules.get('torch')
    return torch is not None and isinstance(features, torch.Tensor)


def feature_rows(records: Sequence[ImageRecord | str], features: Any) -> tuple[dict[str, int], Any]:
    """Check ``features`` (N x D, finite) against ``records`` and map each path to its row.

    A torch tensor stays a tensor on its device (the evaluation then runs there); anything else
    becomes a numpy array.
    """
    feats = features if _is_tensor(features) else np.asarray(features)
    shape = tuple(feats.shape)
    if len(shape) != 2 or shape[1] == 0:
        raise ValueError(
            f'features must be a 2-D array (one row of D > 0 values per image), got shape {shape}'
        )
    if shape[0] != len(records):
        raise ValueError(
            f'features has {shape[0]} rows but {len(records)} records/paths were '
            f'given; features[i] must belong to record i'
        )
    if _is_tensor(feats):
        if feats.is_complex() or feats.dtype == sys.modules['torch'].bool:
            raise ValueError(f'features must be real numbers, got dtype {feats.dtype}')
        bad = (~feats.isfinite().all(dim=1)).nonzero().flatten().cpu().numpy()
    elif not np.issubdtype(feats.dtype, np.number) or np.issubdtype(
        feats.dtype, np.complexfloating
    ):
        raise ValueError(f'features must be real numbers, got dtype {feats.dtype}')
    else:
        bad = np.flatnonzero(~np.isfinite(feats).all(axis=1))
    if bad.size:
        shown = ', '.join(f'{i} ({_path(records[i])})' for i in bad[:10])
        raise ValueError(
            f'features contain NaN/inf in {bad.size} row(s): '
            f'{shown}{" ..." if bad.size > 10 else ""}; fix the model/extraction (e.g. a zero-norm '
            'or overflowing feature)'
        )
    rows: dict[str, int] = {}
    for i, rec in enumerate(records):
        path = _path(rec)
        if path in rows:
            raise ValueError(
                f'image {path} appears twice (rows {rows[path]} and {i}); give each image once'
            )
        rows[path] = i
    return rows, feats


def _path(rec: ImageRecord | str) -> str:
    return rec.path if isinstance(rec, ImageRecord) else str(rec)


def _take(rows: dict[str, int], feats: Any, needed: Sequence[ImageRecord], what: str) -> Any:
    missing = [r.path for r in needed if r.path not in rows]
    if missing:
        raise ValueError(
            f'no feature for {len(missing)} {what} image(s) the protocol needs, e.g. '
            f'{", ".join(missing[:5])}; extract features for every image of test_records()'
        )
    index = [rows[r.path] for r in needed]
    if _is_tensor(feats):
        return feats[sys.modules['torch'].as_tensor(index, device=feats.device)]
    return feats[index]


def score_sysu(
    query: Any,
    candidates: Any,
    q_pids: np.ndarray,
    q_cams: np.ndarray,
    c_pids: np.ndarray,
    c_cams: np.ndarray,
    galleries: Mapping[str, Sequence[np.ndarray]],
    max_rank: int = 20,
    distance: str = 'cosine',
) -> dict[str, ProtocolResult]:
    """SYSU-MM01 results from query and candidate features; ``galleries[setting]`` lists each
    trial's candidate indices. One distance matrix; every query is ranked against every candidate
    once and each trial reads its gallery from that (on the features' device for torch tensors)."""
    if _is_tensor(query):
        from protocols import device

        dist = device.pairwise_distance(query, candidates, distance)
        pool = device.DevicePool(dist, q_pids, c_pids, q_cams, c_cams)
    else:
        dist = pairwise_distance(query, candidates, distance)
        pool = CandidatePool(dist, q_pids, c_pids, q_cams, c_cams)
    return {
        setting: summarize([trial_metrics(pool.ranks(g), max_rank, unique=True) for g in trials])
        for setting, trials in galleries.items()
    }


def score_regdb(
    visible: Any,
    thermal: Any,
    v_pids: np.ndarray,
    t_pids: np.ndarray,
    directions: Sequence[str] = REGDB_DIRECTIONS,
    max_rank: int = 20,
    distance: str = 'cosine',
) -> dict[str, ProtocolResult]:
    """RegDB results of one split from the test visible and thermal features (one distance matrix;
    thermal -> visible is its transpose, both distances being symmetric)."""
    if _is_tensor(visible):
        from protocols import device

        dist, rank = device.pairwise_distance(visible, thermal, distance), device.rank_gallery
    else:
        dist, rank = pairwise_distance(visible, thermal, distance), rank_gallery
    out = {}
    for direction in directions:
        if direction == 'v2t':
            ranks = rank(dist, v_pids, t_pids)
        else:
            ranks = rank(dist.T, t_pids, v_pids)
        out[direction] = summarize([trial_metrics(ranks, max_rank, unique=False)])
    return out


def score_llcm(
    infrared: Any,
    visible: Any,
    ir_pids: np.ndarray,
    ir_cams: np.ndarray,
    vis_pids: np.ndarray,
    vis_cams: np.ndarray,
    draws: Mapping[str, Sequence[np.ndarray]],
    directions: Sequence[str] = LLCM_DIRECTIONS,
    max_rank: int = 20,
    distance: str = 'cosine',
) -> dict[str, ProtocolResult]:
    """LLCM results from the infrared and visible test features; ``draws['visible']`` /
    ``draws['infrared']`` list each trial's sampled images (indices into the two sides).

    One distance matrix infrared x visible, ranked once under the LLCM camera rule (an image never
    sees the other modality's images of its own identity and camera): ``ir2vis`` trial t scores
    every infrared image against the visible draw t; ``vis2ir`` trial t scores the infrared draw t
    against every visible image (DEEN test.py's computation); ``vis2ir-conventional`` trial t
    scores every visible image against the infrared draw t (a second ranking, the transpose).
    """
    if _is_tensor(infrared):
        from protocols import device

        dist = device.pairwise_distance(infrared, visible, distance)

        def pool_of(d, q_pids, c_pids, q_cams, c_cams):
            return device.DevicePool(d, q_pids, c_pids, q_cams, c_cams, camera_rule='llcm')
    else:
        dist = pairwise_distance(infrared, visible, distance)

        def pool_of(d, q_pids, c_pids, q_cams, c_cams):
            return CandidatePool(d, q_pids, c_pids, q_cams, c_cams, camera_rule='llcm')

    out = {}
    if {'ir2vis', 'vis2ir'} & set(directions):
        ir_queries = pool_of(dist, ir_pids, vis_pids, ir_cams, vis_cams)
    for direction in directions:
        if direction == 'ir2vis':
            ranks = [ir_queries.ranks(g) for g in draws['visible']]
        elif direction == 'vis2ir':
            every = ir_queries.ranks()
            ranks = [every.subset(probes) for probes in draws['infrared']]
        elif direction == LLCM_CONVENTIONAL:
            vis_queries = pool_of(dist.T, vis_pids, ir_pids, vis_cams, ir_cams)
            ranks = [vis_queries.ranks(g) for g in draws['infrared']]
        else:
            raise ValueError(f'LLCM direction must be one of {LLCM_SETTINGS}, got {direction!r}')
        out[direction] = summarize([trial_metrics(r, max_rank, unique=True) for r in ranks])
    return out


def evaluate_with_info(
    dataset: str | Dataset,
    root: str | Path | None,
    protocol: Mapping[str, Any] | None,
    records: Sequence[ImageRecord | str],
    features: Any,
    distance: str = 'cosine',
) -> tuple[dict[str, ProtocolResult], dict[str, SettingInfo]]:
    """:func:`evaluate` plus the query/gallery sizes of each setting."""
    name, ds = _open(dataset, root)
    p = check_protocol(name, protocol)
    if distance not in DISTANCE_METRICS:
        raise ValueError(f'distance must be one of {list(DISTANCE_METRICS)}, got {distance!r}')
    rows, feats = feature_rows(records, features)
    first, second = _needed(ds, p)
    # Ids and cameras come from the dataset index, never from the caller's records.
    feats1 = _take(rows, feats, first, _SIDES[name][0])
    feats2 = _take(rows, feats, second, _SIDES[name][1])
    pids1 = np.array([r.pid for r in first])
    pids2 = np.array([r.pid for r in second])
    info: dict[str, SettingInfo] = {}
    if name == 'llcm':
        draws = {
            'visible': llcm_draws(ds, Modality.VISIBLE, p['trials']),
            'infrared': llcm_draws(ds, Modality.INFRARED, p['trials']),
        }
        results = score_llcm(
            feats1,
            feats2,
            pids1,
            np.array([r.cam for r in first]),
            pids2,
            np.array([r.cam for r in second]),
            draws,
            p['directions'],
            p['max_rank'],
            distance,
        )
        for direction in p['directions']:
            if direction == 'ir2vis':
                sizes = (len(first), tuple(map(len, draws['visible'])), len(second))
            elif direction == 'vis2ir':
                sizes = (len(draws['infrared'][0]), (len(second),) * p['trials'], len(second))
            else:
                sizes = (len(second), tuple(map(len, draws['infrared'])), len(first))
            info[direction] = SettingInfo(*sizes)
    elif name == 'sysu':
        perm = load_rand_perm(ds.rand_perm_path) if p['sampler'] == 'official' else None
        galleries = {
            sysu_setting(mode, shots): sysu_galleries(
                ds, mode, shots, p['sampler'], p['trials'], perm, candidates=second
            )
            for mode in p['modes']
            for shots in p['shots']
        }
        results = score_sysu(
            feats1,
            feats2,
            pids1,
            np.array([r.cam for r in first]),
            pids2,
            np.array([r.cam for r in second]),
            galleries,
            p['max_rank'],
            distance,
        )
        for key, trials in galleries.items():
            info[key] = SettingInfo(len(first), tuple(len(g) for g in trials), len(second))
    else:
        results = score_regdb(
            feats1, feats2, pids1, pids2, p['directions'], p['max_rank'], distance
        )
        for direction in p['directions']:
            sizes = (len(first), len(second)) if direction == 'v2t' else (len(second), len(first))
            info[direction] = SettingInfo(sizes[0], (sizes[1],), sizes[1])
    return results, info


def evaluate(
    dataset: str | Dataset,
    root: str | Path | None,
    protocol: Mapping[str, Any] | None,
    records: Sequence[ImageRecord | str],
    features: Any,
    distance: str = 'cosine',
) -> dict[str, ProtocolResult]:
    """Metrics of every setting of ``protocol`` from one feature matrix.

    ``features[i]`` belongs to ``records[i]`` (records or relative paths; any order, supersets
    allowed). Keys: SYSU ``all-single``, ``all-multi``, ``indoor-single``, ``indoor-multi`` (those
    in the protocol); RegDB ``v2t``, ``t2v`` (one split = one trial; averaging the ten splits'
    models is the caller's job); LLCM ``ir2vis``, ``vis2ir`` (and ``vis2ir-conventional`` when the
    protocol asks for it).
    """
    return evaluate_with_info(dataset, root, protocol, records, features, distance)[0]
