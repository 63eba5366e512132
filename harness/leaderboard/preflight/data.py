"""The data checks of the preflight: one entry per dataset in :data:`DATASET_CHECKS`.

Given a dataset root and the protocols the planned runs score on it, an entry opens the dataset
index (collecting the faults that leave an index behind, so that all are reported at once),
checks the files the protocol needs besides the images (SYSU-MM01: ``exp/rand_perm_cam.mat`` for
the official gallery sampler, and that every gallery it draws exists; RegDB: the split's ``idx/``
files and every image they name; LLCM: its ``idx/`` training lists and the images they name),
compares the counts with the release (``protocols.counts``; a difference is a warning: a
stand-in, or a damaged copy), and lists the images each protocol reads, exactly as the engine's
training and test sets read them, and the images of the root's decode-once cache entry, which the
first run decodes whole (``pool``). Whether those images decode is checked by
:func:`image_findings`, for all datasets together.

A new dataset is one more entry: a function ``(root, protocols) -> DatasetReport``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.data.cache import image_pool
from harness.leaderboard.preflight.findings import Finding
from protocols import counts
from protocols.datasets.base import DatasetLayoutError, ImageRecord, Modality
from protocols.datasets.images import verify_images
from protocols.datasets.synthetic import MARKER
from protocols.evaluation import test_records

SHOWN_IMAGES = 20  # unreadable images named one by one per root; the rest are counted


def protocol_key(protocol: Mapping[str, Any]) -> str:
    """A protocol dict as a hashable, stable key (tuples and lists alike)."""
    return json.dumps(dict(protocol), sort_keys=True, default=list)


@dataclass(frozen=True)
class ImageLists:
    """The images a run reads: its training list and its test list, in the engine's order."""

    train: tuple[ImageRecord, ...]
    test: tuple[ImageRecord, ...]

    @property
    def num_classes(self) -> int:
        return len({r.pid for r in self.train})


@dataclass
class DatasetReport:
    """What the checks of one (dataset, root) found; ``lists`` holds, per protocol key, the image
    lists of each protocol whose files could be read; ``pool`` the images of the root's cache
    entry (:func:`harness.data.cache.image_pool`; empty when the index could not be read)."""

    dataset: str
    root: Path
    # (finding, protocol key it concerns; None: every protocol on this root)
    findings: list[tuple[Finding, str | None]] = field(default_factory=list)
    lists: dict[str, ImageLists] = field(default_factory=dict)
    pool: tuple[ImageRecord, ...] = ()

    def add(self, area: str, message: str, protocol: str | None = None, level='error') -> None:
        self.findings.append((Finding(area, message, level), protocol))


def _synthetic(root: Path) -> bool:
    return (root / MARKER).is_file()


def _release_note(root: Path, what: str, diffs: list[str]) -> str:
    why = (
        'a synthetic stand-in (expected)'
        if _synthetic(root)
        else 'results are not comparable with published ones; check that the archive was '
        f'extracted completely and that the split files are those of the {what} release'
    )
    return (
        f'{root}: counts differ from the {what} release (protocols/counts.py): '
        f'{"; ".join(diffs)}: {why}'
    )


# --------------------------------------------------------------------------------------------------
# SYSU-MM01


def check_sysu(root: Path, protocols: Sequence[Mapping[str, Any]]) -> DatasetReport:
    from protocols.datasets.sysu import SYSUMM01
    from protocols.trials import load_rand_perm, sysu_galleries

    report = DatasetReport('sysu', Path(root))
    try:
        ds = SYSUMM01(root, strict=False)
    except DatasetLayoutError as err:  # no index at all: nothing else can be checked
        report.add('data', str(err))
        return report
    for problem in ds.problems:
        report.add('data', problem)
    _sysu_counts(ds, report)
    perm = None
    if any(p['sampler'] == 'official' for p in protocols):
        try:
            perm = load_rand_perm(ds.rand_perm_path)
        except DatasetLayoutError as err:
            report.add('files', str(err))
    train = tuple(ds.train_set().records)
    report.pool = image_pool(ds)
    for p in protocols:
        key = protocol_key(p)
        report.lists[key] = ImageLists(train, tuple(test_records(ds, None, p)))
        if p['sampler'] == 'official' and perm is None:
            continue  # reported above
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')  # stray files: counted by `vireid data check`
                for mode in p['modes']:
                    for shots in p['shots']:
                        sysu_galleries(ds, mode, shots, p['sampler'], p['trials'], perm)
        except DatasetLayoutError as err:  # e.g. a rand_perm_cam.mat of another release
            report.add('files', str(err), key)
    return report


def _sysu_counts(ds, report: DatasetReport) -> None:
    train = ds.train_set()
    size = counts.SYSU_TRAIN
    diffs = []
    if train.num_classes != size.ids:
        diffs.append(f'{train.num_classes} training ids (train+val; release {size.ids})')
    released_images = {Modality.VISIBLE: size.visible, Modality.INFRARED: size.infrared}
    for modality, released in released_images.items():
        have = len(train.by_modality(modality))
        if have != released:
            diffs.append(f'{have:,} {modality.name.lower()} training images (release {released:,})')
    if set(ds.test_ids) != set(counts.SYSU_TEST_IDS):
        n, released_ids = len(set(ds.test_ids)), len(counts.SYSU_TEST_IDS)
        what = f'{n} test ids (release {released_ids})' if n != released_ids else 'other test ids'
        diffs.append(f'exp/test_id.txt: {what}')
    test = set(ds.test_ids)
    for cam, released in counts.SYSU_TEST_IMAGES.items():
        have = sum(r.cam == cam and r.pid in test for r in ds.records)
        if have != released:
            diffs.append(f'cam{cam}: {have:,} test images (release {released:,})')
    if diffs:
        level = 'note' if _synthetic(ds.root) else 'warning'
        report.add('data', _release_note(ds.root, 'SYSU-MM01', diffs), level=level)


# --------------------------------------------------------------------------------------------------
# RegDB


def check_regdb(root: Path, protocols: Sequence[Mapping[str, Any]]) -> DatasetReport:
    from protocols.datasets.regdb import RegDB

    report = DatasetReport('regdb', Path(root))
    try:
        ds = RegDB(root)
    except DatasetLayoutError as err:
        report.add('data', str(err))
        return report
    report.pool = image_pool(ds)
    diffs = []
    for modality in (Modality.VISIBLE, Modality.INFRARED):
        per_id: dict[int, int] = {}
        for r in ds.records:
            if r.modality == modality:
                per_id[r.pid] = per_id.get(r.pid, 0) + 1
        name = 'visible' if modality == Modality.VISIBLE else 'thermal'
        if len(per_id) != counts.REGDB_IDS:
            diffs.append(f'{len(per_id)} {name} ids (release {counts.REGDB_IDS})')
        odd = sorted(pid for pid, n in per_id.items() if n != counts.REGDB_IMAGES_PER_ID)
        if odd:
            diffs.append(
                f'{len(odd)} {name} id folder(s) without {counts.REGDB_IMAGES_PER_ID} images '
                f'(e.g. {odd[0]})'
            )
    split_ids: dict[tuple[int, int], list[int]] = {}  # (train ids, test ids) -> splits
    for p in protocols:
        key = protocol_key(p)
        try:  # parses and validates the split's four idx files and the images they name
            lists = ImageLists(
                tuple(ds.train_set(p['split']).records), tuple(test_records(ds, None, p))
            )
        except DatasetLayoutError as err:
            report.add('files', str(err), key)
            continue
        ids = (lists.num_classes, len({r.pid for r in lists.test}))
        if ids != (counts.REGDB_TRAIN_IDS, counts.REGDB_TEST_IDS):
            split_ids.setdefault(ids, []).append(int(p['split']))
        report.lists[key] = lists
    for (train, test), splits in split_ids.items():
        diffs.append(
            f'split(s) {",".join(map(str, sorted(splits)))}: {train} train / {test} test ids '
            f'(release {counts.REGDB_TRAIN_IDS} / {counts.REGDB_TEST_IDS})'
        )
    if diffs:
        level = 'note' if _synthetic(ds.root) else 'warning'
        report.add('data', _release_note(ds.root, 'RegDB', diffs), level=level)
    return report


# --------------------------------------------------------------------------------------------------
# LLCM


def check_llcm(root: Path, protocols: Sequence[Mapping[str, Any]]) -> DatasetReport:
    """The release layout (``idx/`` lists, ``test_vis``/``test_nir`` folders), every training-list
    line naming an image, and each protocol's lists. The release publishes no image counts
    (``protocols.counts``), so nothing is compared with them."""
    from protocols.datasets.llcm import LLCM

    report = DatasetReport('llcm', Path(root))
    try:
        ds = LLCM(root)
        train = tuple(ds.train_set().records)  # parses both lists and checks each named file
    except DatasetLayoutError as err:
        report.add('data', str(err))
        return report
    report.pool = image_pool(ds)
    for p in protocols:
        report.lists[protocol_key(p)] = ImageLists(train, tuple(test_records(ds, None, p)))
    return report


# fmt: off
DATASET_CHECKS: dict[str, Callable[[Path, Sequence[Mapping[str, Any]]], DatasetReport]] = {
    'sysu': check_sysu,
    'regdb': check_regdb,
    'llcm': check_llcm,
}
# fmt: on


# --------------------------------------------------------------------------------------------------
# Images


def image_findings(
    root: Path, paths: Iterable[str], workers: int, dataset: str
) -> list[tuple[Finding, list[str]]]:
    """(finding, the image paths it is about) for the listed images under ``root`` that do not
    decode (missing, truncated, not an image); past :data:`SHOWN_IMAGES`, one finding counts the
    rest."""
    problems = verify_images(root, sorted(set(paths)), workers=workers)
    out = [(Finding('data', p.reason), [p.path]) for p in problems[:SHOWN_IMAGES]]
    rest = [p.path for p in problems[SHOWN_IMAGES:]]
    if rest:
        message = (
            f'... and {len(rest)} more unreadable images under {root}; '
            f'`vireid data check --dataset {dataset} --root {root}` lists them all'
        )
        out.append((Finding('data', message), rest))
    return out
