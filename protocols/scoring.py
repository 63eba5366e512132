"""``vireid score``: metrics of one protocol setting from a features file (``.npz``: features +
paths)."""

from __future__ import annotations

import os
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

from protocols.datasets import load_dataset
from protocols.evaluation import evaluate_with_info, feature_rows, test_records
from protocols.metrics import METRIC_KEYS
from protocols.trials import LLCM_SETTING_TEXT, SYSU_MODES

NPZ_KEYS = ('features', 'paths')
_HOW_TO_WRITE = 'np.savez(out, features=f, paths=np.array(paths, dtype=str))'
_ZIP_MAGIC = b'PK\x03\x04'
_EMPTY_ZIP_MAGIC = b'PK\x05\x06'


def _read_array(npz: Any, key: str, path: Path) -> np.ndarray:
    """One array of an open .npz; object arrays are refused (never unpickled), damage named."""
    try:
        return npz[key]
    except ValueError as err:
        if 'allow_pickle' not in str(err) and 'Object arrays' not in str(err):
            raise ValueError(
                f'{path}: array "{key}" cannot be read ({err}); write the file again'
            ) from None
        kind = 'N x D floats' if key == 'features' else 'N strings'
        raise ValueError(
            f'{path}: "{key}" is stored as Python objects (dtype object), which are never '
            f'unpickled here (unpickling can run code); save it as an array of {kind}, e.g. '
            f'{_HOW_TO_WRITE}'
        ) from None
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as err:
        raise ValueError(
            f'{path}: array "{key}" is damaged ({type(err).__name__}: {err}); the file was cut '
            'short or changed after it was written: write it again (vireid extract)'
        ) from None


def load_features(path: str | Path, root: str | Path | None = None) -> tuple[list[str], np.ndarray]:
    """``(paths, features)`` of a features file; paths normalised to POSIX paths relative to
    ``root``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f'features file {path} not found; expected an .npz with arrays {NPZ_KEYS}'
        )
    with open(path, 'rb') as fh:
        head = fh.read(6)
    if head.startswith(np.lib.format.MAGIC_PREFIX):
        raise ValueError(
            f'{path} holds a single array (.npy), not an .npz archive of two; write it with '
            f'{_HOW_TO_WRITE}'
        )
    if not head.startswith((_ZIP_MAGIC, _EMPTY_ZIP_MAGIC)):
        raise ValueError(
            f'{path} is not an .npz file (it starts with bytes {head!r}, not a zip archive): '
            f'expected the file `vireid extract` writes, or {_HOW_TO_WRITE}'
        )
    try:
        loaded = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise ValueError(
            f'{path} is a damaged .npz (zip) archive ({err}): it was cut short or changed after '
            'it was written; write it again (vireid extract)'
        ) from None
    with loaded as npz:
        keys = sorted(npz.files)
        if sorted(NPZ_KEYS) != keys:
            raise ValueError(
                f'{path} holds arrays {keys}; expected exactly {list(NPZ_KEYS)} '
                f'(features: N x D floats, paths: N strings relative to the dataset root)'
            )
        features = _read_array(npz, 'features', path)
        paths = _read_array(npz, 'paths', path)
    if paths.ndim != 1 or paths.dtype.kind not in 'US':
        raise ValueError(
            f'{path}: "paths" must be a 1-D array of strings, got dtype {paths.dtype} '
            f'shape {paths.shape}'
        )
    if not np.issubdtype(features.dtype, np.floating):
        raise ValueError(f'{path}: "features" must hold floats (N x D), got dtype {features.dtype}')
    if features.ndim != 2:
        raise ValueError(f'{path}: "features" must be 2-D (N x D), got shape {features.shape}')
    if features.shape[0] != paths.shape[0]:
        raise ValueError(
            f'{path}: "features" has {features.shape[0]} rows but "paths" has {paths.shape[0]} '
            f'entries; store one path per feature row'
        )
    return [
        _relative(str(p.decode() if isinstance(p, bytes) else p), root) for p in paths
    ], features


def save_features(path: str | Path, paths: Sequence[str], features: np.ndarray) -> Path:
    """Write a features file that :func:`load_features` (and ``vireid score``) reads: ``features``
    N x D (stored as float32), ``paths`` N strings relative to the dataset root. Written to a
    temporary file, then renamed, so a crash never leaves a half-written file."""
    path = Path(path)
    feats = np.asarray(features, dtype=np.float32)
    names = np.asarray([str(p) for p in paths], dtype=str)
    if feats.ndim != 2 or feats.shape[0] != names.shape[0]:
        raise ValueError(
            f'features must be N x D with one row per path; got shape '
            f'{feats.shape} for {names.shape[0]} paths'
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        with os.fdopen(fd, 'wb') as fh:
            np.savez(fh, features=feats, paths=names)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _relative(p: str, root: str | Path | None) -> str:
    p = p.replace('\\', '/')
    if root is not None and Path(p).is_absolute():
        try:
            p = Path(p).resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            pass  # reported as an unknown path by the caller
    while p.startswith('./'):
        p = p[2:]
    return p


def score(
    features_path: str | Path,
    dataset: str,
    root: str | Path,
    *,
    mode: str | None = None,
    shots: int | None = None,
    sampler: str | None = None,
    trial: int | None = None,
    direction: str | None = None,
    distance: str = 'cosine',
) -> dict[str, Any]:
    """Score one setting; returns the JSON-able result (metrics in percent, plus settings metadata).

    SYSU: ``mode`` (all), ``shots`` (1), ``sampler`` (official), 10 trials. RegDB: ``trial`` = split
    (1), ``direction`` (v2t). LLCM: ``direction`` (ir2vis; vis2ir is DEEN test.py's computation),
    10 trials. Options of another dataset are refused.
    """
    if dataset == 'sysu':
        wrong = {'--split': trial, '--direction': direction}
        protocol = dict(
            modes=(mode or 'all',),
            shots=(1 if shots is None else shots,),
            sampler=sampler or 'official',
        )
    elif dataset == 'regdb':
        wrong = {'--mode': mode, '--shots': shots, '--sampler': sampler}
        protocol = dict(split=1 if trial is None else trial, directions=(direction or 'v2t',))
    elif dataset == 'llcm':
        wrong = {'--mode': mode, '--shots': shots, '--sampler': sampler, '--split': trial}
        protocol = dict(directions=(direction or 'ir2vis',))
    else:
        raise ValueError(f'unknown dataset {dataset!r}; expected sysu, regdb or llcm')
    given = [k for k, v in wrong.items() if v is not None]
    if given:
        raise ValueError(f'{", ".join(given)} do(es) not apply to {dataset}')
    ds = load_dataset(dataset, root)
    paths, features = load_features(features_path, ds.root)
    feature_rows(paths, features)  # shape, NaN/inf and duplicate checks before the path checks
    problems = degenerate_features(paths, features)
    for problem in problems:
        warnings.warn(f'{features_path}: {problem}', DegenerateFeaturesWarning, stacklevel=2)
    # Any test image is welcome (a file made for all-search also serves indoor search); the
    # protocol's own images must all be there (checked by evaluate_with_info).
    every_mode = dict(protocol, modes=SYSU_MODES) if dataset == 'sysu' else protocol
    known = {r.path for r in test_records(ds, None, every_mode)}
    unknown = [p for p in paths if p not in known]
    if unknown:
        raise ValueError(
            f'{features_path}: {len(unknown)} path(s) are not test images of {dataset}'
            f'{" split " + str(protocol["split"]) if dataset == "regdb" else ""} under {ds.root}, '
            f'e.g. {", ".join(unknown[:5])}; paths must be relative to the dataset root as in its '
            f'layout (e.g. {next(iter(sorted(known)))})'
        )
    results, info = evaluate_with_info(ds, None, protocol, paths, features, distance)
    ((setting, result),) = results.items()
    sizes = info[setting]
    n_gallery = sizes.n_gallery[0] if len(set(sizes.n_gallery)) == 1 else list(sizes.n_gallery)
    meta = dict(
        dataset=dataset,
        setting=setting,
        root=str(ds.root),
        features=str(features_path),
        mode=protocol.get('modes', (None,))[0],
        shots=protocol.get('shots', (None,))[0],
        sampler=protocol.get('sampler'),
        split=protocol.get('split'),
        direction=protocol.get('directions', (None,))[0],
        distance=distance,
        trials=len(result.per_trial),
        n_query=sizes.n_query,
        n_gallery=n_gallery,
        n_candidates=sizes.n_candidates,
    )
    return {**meta, **result.to_dict(), 'warnings': problems}


class DegenerateFeaturesWarning(UserWarning):
    """The features cannot tell images apart (all equal, or zero vectors): the metrics are noise."""


def degenerate_features(paths: list[str], features: np.ndarray) -> list[str]:
    """What makes ``features`` unable to rank a gallery: zero-norm rows, all rows equal."""
    out = []
    norms = np.linalg.norm(features.astype(np.float64), axis=1)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        out.append(
            f'{zero.size} of {len(features)} feature rows are all zeros (e.g. '
            f'{paths[zero[0]]}): they have no direction, so their distances to every image '
            'are equal and their ranks are decided by ties; check the model and the '
            'extraction'
        )
    if len(features) > 1 and zero.size < len(features) and (features == features[0]).all():
        out.append(
            f'all {len(features)} feature rows are identical: the model gives every image '
            'the same feature, so the metrics measure tie-breaking, not the model; check '
            'the model and the extraction'
        )
    return out


def format_result(result: dict[str, Any]) -> str:
    """A small plain-text table: one row per trial, then mean and std."""
    keys = list(METRIC_KEYS)
    rows = [[i] + [t[k] for k in keys] for i, t in enumerate(result['per_trial'])]
    if len(rows) > 1:
        rows += [
            ['mean'] + [result['mean'][k] for k in keys],
            ['std'] + [result['std'][k] for k in keys],
        ]
    setting = result['setting']
    if result['dataset'] == 'sysu':
        head = f'sysu {setting} sampler={result["sampler"]}'
    elif result['dataset'] == 'regdb':
        head = f'regdb split {result["split"]} {setting}'
    else:
        head = f'llcm {setting} ({LLCM_SETTING_TEXT[setting]})'
    title = (
        f'{head} distance={result["distance"]} queries={result["n_query"]} '
        f'gallery={result["n_gallery"]}'
    )
    label = 'split' if result['dataset'] == 'regdb' else 'trial'
    if result['dataset'] == 'regdb':
        rows[0][0] = result['split']
    return title + '\n' + tabulate(rows, headers=[label] + keys, floatfmt='.2f')
