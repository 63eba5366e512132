"""Loading a method config over its protocol base, and refusing protocol changes."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

from mmengine.config import Config

import protocols
from protocols.evaluation import check_protocol

PROTOCOL_CONFIG_DIR = Path(protocols.__file__).parent / 'configs'
# Set per machine or varied by the leaderboard, so changing them keeps results comparable.
FREE_KEYS = ('data_root', 'protocol.split')
# May change, but the run is then labelled optimistic (test-set model selection).
LABELLED_KEYS = ('selection',)
SELECTION_RULES = ('final', 'best-test-rank1')


class ProtocolChangeError(ValueError):
    """A config changes a field the protocol owns."""


def protocol_config_path(name: str) -> Path:
    path = PROTOCOL_CONFIG_DIR / f'{name}.py'
    if not path.is_file():
        known = sorted(p.stem for p in PROTOCOL_CONFIG_DIR.glob('*.py'))
        raise ValueError(f'protocol_base = {name!r} names no protocol config; choose one of {known}')
    return path


def method_config_path(ref: str) -> Path:
    """``'agw/agw_demo_sysu'`` -> the file ``agw_demo_sysu.py`` among the installed method
    ``agw``'s configs (what a ``method_base`` names)."""
    from harness.plugins import get_method

    method, sep, stem = str(ref).partition('/')
    if not (method and sep and stem):
        raise ValueError(f"method_base = {ref!r}; expected 'method/config stem', "
                         "e.g. 'agw/agw_demo_sysu'")
    spec = get_method(method)
    path = Path(spec.configs) / f'{stem}.py'
    if not path.is_file():
        known = ', '.join(p.stem for p in spec.config_files())
        raise ValueError(f'method_base = {ref!r}: method {method!r} has no config {stem}.py '
                         f'(its configs: {known})')
    return path


def method_config(path: str | Path, _seen: tuple[Path, ...] = ()) -> Config:
    """The method config at ``path``, laid over its ``method_base`` if it names one.

    ``method_base = 'agw/agw_demo_sysu'`` inherits another installed method's config by name, as
    ``protocol_base`` does for protocols, so a plugin installed anywhere can change a few parts
    of a published recipe (mmengine ``_delete_=True`` replaces a dict instead of merging).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'config file {path} does not exist')
    cfg = Config.fromfile(str(path))
    ref = cfg.get('method_base')
    if ref is None:
        return cfg
    base_path = method_config_path(ref)
    seen = (*_seen, path.resolve())
    if base_path.resolve() in seen:
        chain = ' -> '.join(str(p) for p in (*seen, base_path))
        raise ValueError(f'method_base loops: {chain}')
    base = method_config(base_path, seen)
    own = cfg.to_dict()
    own.pop('method_base')
    base.merge_from_dict(own)
    return base


def load_config(path: str | Path, cfg_options: Mapping[str, Any] | None = None) -> Config:
    """The method config at ``path`` (over its ``method_base``, if any) laid over
    ``protocols/configs/<protocol_base>.py``.

    Plugins installed anywhere work, because the protocol is found by name rather than by a
    relative ``_base_`` path (mmengine's ``pkg::`` bases need pkg_resources, gone here).
    """
    path = Path(path)
    method = method_config(path)
    base_name = method.get('protocol_base')
    if base_name is None:
        raise ValueError(f"{path} sets no protocol_base; add protocol_base = 'sysu' (or 'regdb') so "
                         'the config inherits the protocol every method shares')
    cfg = Config.fromfile(str(protocol_config_path(base_name)))
    cfg.merge_from_dict(method.to_dict())
    if cfg_options:
        cfg.merge_from_dict(dict(cfg_options))
    cfg.protocol = check_protocol(cfg.protocol['dataset'], cfg.protocol)
    selection = cfg.get('selection', {}).get('rule', 'final')
    if selection not in SELECTION_RULES:
        raise ValueError(f'selection.rule = {selection!r} in {path}; choose one of {SELECTION_RULES}')
    cfg.config_file = str(path)
    return cfg


def _flatten(obj: Any, prefix: str = '') -> dict[str, Any]:
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f'{prefix}{k}.'))
        return out or {prefix[:-1]: {}}
    if isinstance(obj, list):
        obj = tuple(obj)
    return {prefix[:-1]: obj}


def protocol_changes(cfg: Config) -> dict[str, tuple[Any, Any]]:
    """Protocol-owned fields whose final value differs from the protocol base: key -> (base, final)."""
    base = Config.fromfile(str(protocol_config_path(cfg.protocol_base))).to_dict()
    base['protocol'] = check_protocol(base['protocol']['dataset'], base['protocol'])
    final = cfg.to_dict()
    changes = {}
    for top in base:
        if top in LABELLED_KEYS:
            continue
        b, f = _flatten(base[top], f'{top}.'), _flatten(final.get(top, '<removed>'), f'{top}.')
        for key in sorted(set(b) | set(f)):
            if key in FREE_KEYS or b.get(key, '<absent>') == f.get(key, '<absent>'):
                continue
            changes[key] = (b.get(key, '<absent>'), f.get(key, '<absent>'))
    return changes


def check_protocol_unchanged(cfg: Config, allow: bool = False) -> bool:
    """True when the config keeps the protocol; raises unless ``allow`` when it does not."""
    changes = protocol_changes(cfg)
    if changes and not allow:
        lines = '\n'.join(f'  {k}: protocol {b!r} -> config {f!r}' for k, (b, f) in changes.items())
        raise ProtocolChangeError(
            f'{cfg.config_file} changes protocol fields, so its results would not be comparable:\n{lines}\n'
            'Remove these settings from the method config / --cfg-options, or pass '
            '--allow-protocol-change to run it anyway (its records are then marked non-comparable).')
    return not changes


def is_optimistic(cfg: Config) -> bool:
    return cfg.get('selection', {}).get('rule', 'final') != 'final'


def config_hash(cfg: Config) -> str:
    """Hash of the effective config (what was run), stable across dict orderings."""
    # Machine-specific keys do not change what was run.
    cfg_dict = {k: v for k, v in cfg.to_dict().items() if k not in ('data_root', 'config_file', 'work_dir')}
    text = json.dumps(cfg_dict, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()
