"""The throwaway external plugin (tests/fixtures/toy_plugin) made visible as an installed package."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

TOY_PLUGIN = Path(__file__).resolve().parents[1] / 'fixtures' / 'toy_plugin'


@pytest.fixture
def toy_plugin(monkeypatch: pytest.MonkeyPatch):
    """Puts the fake distribution (dist-info with a vireid.methods entry point) on sys.path."""
    from harness import plugins
    monkeypatch.syspath_prepend(str(TOY_PLUGIN))
    # Subprocesses (the `vireid` CLI) see the plugin too.
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join(filter(None, [str(TOY_PLUGIN), os.environ.get('PYTHONPATH')])))
    methods = plugins.discover(refresh=True)
    yield methods
    plugins.discover(refresh=True)


COMPOSED_PLUGIN = Path(__file__).resolve().parents[1] / 'fixtures' / 'composed_plugin'


@pytest.fixture
def composed_plugin(monkeypatch: pytest.MonkeyPatch):
    """The second fake distribution: a method made of a config and one registered loss."""
    from harness import plugins
    monkeypatch.syspath_prepend(str(COMPOSED_PLUGIN))
    methods = plugins.discover(refresh=True)
    yield methods
    plugins.discover(refresh=True)
