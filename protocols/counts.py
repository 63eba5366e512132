"""Image and identity counts of the released SYSU-MM01 and RegDB, for when the data are not at hand
(LLCM's are not published: see :data:`UNPUBLISHED`).

The cost plan of a leaderboard (iterations per epoch) and the evaluation benchmark (a stand-in with
the real test-set structure) use them; everything that has the data reads the dataset index instead.
SYSU-MM01 counts are those of the release (https://github.com/wuancong/SYSU-MM01: image folders,
``exp/*_id.txt``, ``evaluation/data_split/rand_perm_cam.mat``); RegDB's are those of the dataset
(Nguyen et al., Sensors 2017) and of its ten ``idx/`` splits.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainSize:
    """Identities and images of one training set, per modality."""

    ids: int
    visible: int
    infrared: int


# SYSU-MM01 trains on the train + val ids (296 + 99), as AGW and MPANet do.
SYSU_TRAIN = TrainSize(ids=395, visible=22_258, infrared=11_909)
# RegDB: 412 people, 10 visible + 10 thermal images each; each split trains on 206 of them.
REGDB_IDS = 412
REGDB_IMAGES_PER_ID = 10
REGDB_TRAIN_IDS = REGDB_TEST_IDS = 206
REGDB_TRAIN = TrainSize(
    ids=REGDB_TRAIN_IDS,
    visible=REGDB_TRAIN_IDS * REGDB_IMAGES_PER_ID,
    infrared=REGDB_TRAIN_IDS * REGDB_IMAGES_PER_ID,
)
TRAIN_SIZES = {'sysu': SYSU_TRAIN, 'regdb': REGDB_TRAIN}
# Datasets whose training image counts no source states, and what is known instead. None is
# guessed: a cost plan without the data says so.
UNPUBLISHED = {
    'llcm': 'LLCM training image counts are unpublished (ZYK100/LLCM states 46,767 images of '
    '1,064 ids in all, README.md:8, and 713 training classes, DEEN/test.py:59)',
}

# SYSU-MM01 test set: the 96 ids of exp/test_id.txt.
# fmt: off
SYSU_TEST_IDS = (
    6, 10, 17, 21, 24, 25, 27, 28, 31, 34, 36, 37, 40, 41, 42, 43, 44, 45, 49, 50, 51, 54, 63, 69,
    75, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 93, 102, 104, 105, 106, 108, 112, 116, 117, 122,
    125, 129, 130, 134, 138, 139, 150, 152, 162, 166, 167, 170, 172, 176, 185, 190, 192, 202, 204,
    207, 210, 215, 223, 229, 232, 237, 252, 253, 257, 259, 263, 266, 269, 272, 273, 274, 275, 282,
    285, 291, 300, 301, 302, 303, 307, 312, 315, 318, 331, 333,
)
# Test ids a camera never saw. The indoor cameras 1 and 2 miss the same 40 (indoor search: 56 ids).
_INDOOR_MISSING = (
    17, 21, 24, 25, 31, 34, 36, 37, 40, 41, 42, 43, 44, 45, 49, 50, 51, 80, 81, 82, 83, 84, 85, 86,
    87, 88, 89, 90, 93, 105, 106, 116, 129, 166, 176, 192, 210, 275, 303, 333,
)
# fmt: on
SYSU_TEST_IDS_MISSING = {
    1: _INDOOR_MISSING,
    2: _INDOOR_MISSING,
    3: (21, 27, 257),
    4: (263, 333),
    5: (31,),
    6: (),
}
# Test images per camera: visible cams 1, 2, 4, 5 are the gallery candidates (6,775), infrared cams
# 3 and 6 the queries (3,803). Every (camera, test id) of a gallery camera holds at least 10 images.
SYSU_TEST_IMAGES = {1: 1374, 2: 1565, 3: 1883, 4: 1918, 5: 1918, 6: 1920}
SYSU_MIN_GALLERY_IMAGES = 10
