"""Plugins cannot break each other: a plugin that cannot be imported, or that registers a name
another plugin or the harness owns, is skipped and named once; every other method keeps working.

``tests/fixtures/clashing_plugins`` installs six fake distributions (see the ``clashing_plugins``
fixture): one good plugin (clash_a) and five that must be skipped, each for its own reason.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path

import pytest
from mmengine.registry import DefaultScope

from harness import plugins
from harness.engine.config import load_config
from harness.plugins import PluginSkipped
from harness.registry import MODELS

ROOT = Path(__file__).resolve().parents[2]
# The methods this distribution declares (pyproject.toml's vireid.methods entry points).
BUILT_IN = {
    ep.name for ep in distribution('vireid-bench').entry_points if ep.group == 'vireid.methods'
}
SKIPPED = {'broken', 'clash_b', 'clash_force', 'clash_harness', 'clash_method'}


def _reason(lines: list[str], plugin: str) -> str:
    (line,) = [line for line in lines if f"method plugin '{plugin}' " in line]
    return line


def test_each_bad_plugin_is_skipped_once_naming_both_and_the_rest_works(clashing_plugins):
    with pytest.warns(PluginSkipped) as caught:
        methods = plugins.discover(refresh=True)
    reasons = [str(w.message) for w in caught if issubclass(w.category, PluginSkipped)]
    assert len(reasons) == len(SKIPPED)  # one line per skipped plugin
    assert set(methods) == BUILT_IN | {'clash_a'}
    assert methods['agw'].distribution.startswith('vireid-bench ')  # the built-in AGW, not theirs
    assert {s.entry_point.split(' = ')[0] for s in plugins.skipped_plugins()} == SKIPPED

    clash = _reason(reasons, 'clash_b')
    assert '(vireid-clash-b 0.1) is skipped' in clash and 'ClashTripletLoss' in clash
    assert "method plugin 'clash_a' (vireid-clash-a 0.1, vireid_clash_a) already owns" in clash
    forced = _reason(reasons, 'clash_force')
    assert 'replaces ClashTripletLoss' in forced and "'clash_a' (vireid-clash-a 0.1" in forced
    harness_name = _reason(reasons, 'clash_harness')
    assert 'IdentityLoss' in harness_name and 'the harness (harness.models.losses' in harness_name
    assert "defines method 'agw', which vireid-bench" in _reason(reasons, 'clash_method')
    assert "ModuleNotFoundError: No module named 'vireid_no_such_dependency'" in _reason(
        reasons, 'broken'
    )

    # The owners keep their parts; what a skipped plugin registered is gone again.
    import vireid_clash_a

    assert MODELS.get('ClashTripletLoss') is vireid_clash_a.ClashTripletLoss
    assert 'ClashOnlyInB' not in MODELS.module_dict
    assert MODELS.module_dict['IdentityLoss'].__module__.startswith('harness.models.losses')
    with pytest.raises(KeyError, match="no method 'clash_b'.*'clash_b' .* is skipped"):
        plugins.get_method('clash_b')
    # A built-in method still builds from its config.
    cfg = load_config(ROOT / 'methods' / 'agw' / 'configs' / 'agw_demo_sysu.py')
    with DefaultScope.overwrite_default_scope('harness'):
        model = MODELS.build(dict(cfg.model, num_classes=4))
    assert type(model).__name__ == 'CrossModalityReID'

    # Discovering again decides again (the skipped plugins' modules were forgotten).
    with pytest.warns(PluginSkipped) as again:
        assert set(plugins.discover(refresh=True)) == BUILT_IN | {'clash_a'}
    assert len([w for w in again if issubclass(w.category, PluginSkipped)]) == len(SKIPPED)


def test_vireid_methods_lists_the_others_and_one_line_names_each_clash(clashing_plugins):
    proc = subprocess.run(
        [sys.executable, '-m', 'harness', 'methods'],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, 'OMP_NUM_THREADS': '1'},
    )
    assert proc.returncode == 0, proc.stderr
    listed = set(re.findall(r'^(\w+) ', proc.stdout, re.M)) - {'method'}
    assert listed == BUILT_IN | {'clash_a'}, proc.stdout
    lines = [
        line
        for line in proc.stderr.splitlines()
        if line.startswith('vireid methods: warning: method plugin')
    ]
    assert len(lines) == len(SKIPPED), proc.stderr
    clash = _reason(lines, 'clash_b')
    assert 'ClashTripletLoss' in clash and "'clash_a' (vireid-clash-a 0.1" in clash
