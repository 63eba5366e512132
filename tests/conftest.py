"""Shared fixtures: small synthetic SYSU-MM01, RegDB and LLCM datasets in the real layouts,
generated once, one-thread torch, and torch's global generator seeded for every test.

Session-scoped roots are read-only by convention; tests that damage a dataset use ``sysu_copy`` /
``regdb_copy`` (a fresh copy per test).
"""

from __future__ import annotations

import shutil
import zlib
from pathlib import Path

import pytest
import torch

# Small enough to generate in seconds, large enough for ~10 test ids and 10-shot galleries.
SYSU_IDS = 50
REGDB_IDS = 20
LLCM_IDS = 24  # 8 test ids


@pytest.fixture(scope='session')
def sysu_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from protocols.datasets.synthetic import generate

    root = tmp_path_factory.mktemp('sysu') / 'SYSU-MM01'
    return Path(generate('sysu', root, ids=SYSU_IDS, seed=0))


@pytest.fixture(scope='session')
def regdb_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from protocols.datasets.synthetic import generate

    root = tmp_path_factory.mktemp('regdb') / 'RegDB'
    return Path(generate('regdb', root, ids=REGDB_IDS, seed=0))


@pytest.fixture(scope='session')
def llcm_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from protocols.datasets.synthetic import generate

    root = tmp_path_factory.mktemp('llcm') / 'LLCM'
    return Path(generate('llcm', root, ids=LLCM_IDS, seed=0))


@pytest.fixture
def sysu_copy(sysu_root: Path, tmp_path: Path) -> Path:
    """A private copy of the synthetic SYSU-MM01 that a test may modify."""
    return Path(shutil.copytree(sysu_root, tmp_path / 'SYSU-MM01'))


@pytest.fixture
def regdb_copy(regdb_root: Path, tmp_path: Path) -> Path:
    """A private copy of the synthetic RegDB that a test may modify."""
    return Path(shutil.copytree(regdb_root, tmp_path / 'RegDB'))


@pytest.fixture
def llcm_copy(llcm_root: Path, tmp_path: Path) -> Path:
    """A private copy of the synthetic LLCM that a test may modify."""
    return Path(shutil.copytree(llcm_root, tmp_path / 'LLCM'))


@pytest.fixture(scope='module')
def one_thread():
    """One intra-op thread: the 2-core test machines are shared, and more threads than free cores
    made small forward passes several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _seed_torch(item: pytest.Item, offset: int) -> None:
    seed = item.config.getoption('randomly_seed', default=None)
    seed = seed if isinstance(seed, int) else 0
    torch.manual_seed((seed + zlib.crc32(item.nodeid.encode()) + offset) % 2**32)


# torch's global generator is seeded before each test's fixtures and again before its body, as
# pytest-randomly (the test extra) seeds ``random`` and numpy: from the run's seed and the test's
# id, so what a test (or a module fixture it is the first to use) draws never depends on the tests
# that ran before it. The run's seed is printed (repeat a run with ``-p randomly
# --randomly-seed=N``), so a test that holds only for some draws fails in some runs, reproducibly;
# without the plugin (``-p no:randomly``) the seed is 0.
@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _seed_torch(item, -1)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    _seed_torch(item, 0)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """The order's seed at the end too (``-q`` hides pytest-randomly's header line), beside the
    failures it reproduces."""
    seed = config.getoption('randomly_seed', default=None)
    if isinstance(seed, int):
        terminalreporter.write_line(
            f'tests ran in random order; repeat it with: pytest -p randomly --randomly-seed={seed}'
        )
