"""The authors' released checkpoints, re-scored under the harness protocol ("official" rows).

A method declares the checkpoints its authors released (``MethodSpec.released``: a tuple of
:class:`ReleasedCheckpoint`): where the file is (a Google Drive id fetched with gdown, or a page to
download it from by hand), its md5 when known, which harness config its network fits, and how its
tensors map onto that config's model. ``vireid leaderboard --official`` plans one scored-only run
per declared checkpoint (``--official-checkpoint METHOD:DATASET=PATH`` for a file already on disk;
``--official-only`` plans those runs alone, training nothing);
:func:`score_official` is that run: it fetches or takes the file, checks its md5, converts it onto
the config's model (strictly), scores it with the same protocol code as every other run and writes
a record with ``source='official'`` whose provenance names the file, its md5 and its origin.

Official training scripts pickle numpy objects beside the weights (AGW's ``train.py`` saves
``{'net', 'cmc', 'mAP', 'mINP', 'epoch'}``), so reading them needs ``weights_only=False``, which
runs the file's pickle code: the caller must pass ``trusted`` explicitly.

The package, along its seams: ``release`` (the declarations, errors and look-up), ``given``
(``--official-checkpoint``), ``fetch`` (gdown, md5), ``score`` (the run) and ``notes`` (table
notes); the leaderboard plans the official runs (:mod:`harness.leaderboard.official`).
"""

from harness.official.fetch import FETCH_TIMEOUT, fetch_released, gdown_download, md5_of
from harness.official.given import GIVEN_SYNTAX, GivenCheckpoint, parse_given
from harness.official.notes import official_note, protocol_tag
from harness.official.release import (
    CONVERTED,
    DOWNLOADS,
    TRUST_REASON,
    OfficialError,
    OfficialFetchError,
    PlannedRun,
    ReleasedCheckpoint,
    dataset_target,
    find_released,
    released_of,
    unreleased_note,
)
from harness.official.score import score_official

__all__ = [
    'CONVERTED',
    'DOWNLOADS',
    'FETCH_TIMEOUT',
    'GIVEN_SYNTAX',
    'TRUST_REASON',
    'GivenCheckpoint',
    'OfficialError',
    'OfficialFetchError',
    'PlannedRun',
    'ReleasedCheckpoint',
    'dataset_target',
    'fetch_released',
    'find_released',
    'gdown_download',
    'md5_of',
    'official_note',
    'parse_given',
    'protocol_tag',
    'released_of',
    'score_official',
    'unreleased_note',
]
