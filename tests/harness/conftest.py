"""The throwaway external plugins (tests/fixtures/*_plugin) made visible as installed packages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / 'fixtures'
TOY_PLUGIN = FIXTURES / 'toy_plugin'
COMPOSED_PLUGIN = FIXTURES / 'composed_plugin'
CLASHING_PLUGINS = FIXTURES / 'clashing_plugins'


def _installed(monkeypatch: pytest.MonkeyPatch, folder: Path, discover: bool = True):
    """Puts a fake distribution (dist-info with a vireid.methods entry point) on sys.path, for
    this process and its subprocesses (the `vireid` CLI), and yields the discovered methods
    (``discover=False``: yields nothing, for a test that discovers them itself)."""
    from harness import plugins

    monkeypatch.syspath_prepend(str(folder))
    paths = [str(folder), os.environ.get('PYTHONPATH')]
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join(filter(None, paths)))
    yield plugins.discover(refresh=True) if discover else None
    monkeypatch.undo()
    plugins.discover(refresh=True)


@pytest.fixture
def toy_plugin(monkeypatch: pytest.MonkeyPatch):
    """ToyNet: a plugin with a model class of its own."""
    yield from _installed(monkeypatch, TOY_PLUGIN)


@pytest.fixture
def composed_plugin(monkeypatch: pytest.MonkeyPatch):
    """AGW + cross-modality triplet: a plugin made of a config and one registered loss."""
    yield from _installed(monkeypatch, COMPOSED_PLUGIN)


@pytest.fixture
def clashing_plugins(monkeypatch: pytest.MonkeyPatch):
    """Six fake plugins, installed but not yet discovered: clash_a registers ClashTripletLoss;
    clash_b registers ClashOnlyInB, then ClashTripletLoss again; clash_harness registers the
    harness's IdentityLoss; clash_force replaces ClashTripletLoss with force=True; clash_method
    defines method 'agw'; broken cannot be imported."""
    yield from _installed(monkeypatch, CLASHING_PLUGINS, discover=False)
