"""The command line a new user meets first: --version, config names, plain error messages."""

from __future__ import annotations

import pytest

import harness
from harness.cli import main
from harness.plugins import resolve_config


def test_version_names_the_release_and_where_it_is_installed(capsys):
    with pytest.raises(SystemExit) as stop:
        main(['--version'])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f'vireid {harness.__version__} (') and 'harness' in out


def test_config_names_resolve_through_installed_plugins(toy_plugin, tmp_path):
    assert resolve_config('agw_sysu').as_posix().endswith('methods/agw/configs/agw_sysu.py')
    assert resolve_config('mpanet_demo_regdb.py').name == 'mpanet_demo_regdb.py'
    assert resolve_config('toy_sysu').parent.name == 'configs'  # an external plugin's config
    own = tmp_path / 'agw_sysu.py'
    own.write_text("protocol_base = 'sysu'\n")
    assert resolve_config(own) == own  # a path wins over a name
    with pytest.raises(FileNotFoundError, match='did you mean agw_sysu'):
        resolve_config('agw_sysuu')
    with pytest.raises(FileNotFoundError, match='config file nope/agw_sysu.py does not exist'):
        resolve_config('nope/agw_sysu.py')


def test_error_messages_are_printed_as_written(capsys):
    assert main(['convert', 'nosuchmethod', 'a.pth', 'b.pth']) == 2
    err = capsys.readouterr().err
    assert err.startswith("vireid convert: error: no method 'nosuchmethod' is installed")
    assert main(['train', 'agw_sysuu']) == 2
    assert 'did you mean agw_sysu' in capsys.readouterr().err
