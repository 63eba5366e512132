"""Method plugins: packages found through the ``vireid.methods`` entry-point group.

A plugin's entry point names a :class:`MethodSpec`; loading it imports the plugin package, whose
``@MODELS.register_module()`` calls fill the harness registries. Built-in methods are declared the
same way in ``pyproject.toml``, so an external ``pip install``-ed package is on equal footing.

Plugins cannot break each other: each entry point is loaded on its own, after the harness's own
parts are registered and after the built-in methods. One that cannot be imported, that names no
:class:`MethodSpec`, that defines a method name another plugin defines, or that registers a part
name another plugin (or the harness) already owns (mmengine's ``KeyError: ... is already
registered``, or a ``force=True`` registration that would replace it) is skipped: what it had
registered is taken out again, and one :class:`PluginSkipped` warning names it, the name and the
owner. Every other method keeps working.
"""

from __future__ import annotations

import difflib
import importlib
import re
import sys
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from harness import registry as _registry
from harness.errors import HarnessWarning

GROUP = 'vireid.methods'
# The distribution of the harness itself: its built-in methods load before any other plugin.
HARNESS_DISTRIBUTION = 'vireid-bench'


@dataclass(frozen=True)
class MethodSpec:
    """What a plugin tells the harness about itself."""

    name: str  # short id used on the command line, e.g. 'mpanet'
    title: str  # human name for tables, e.g. 'MPANet'
    configs: Path  # folder with the method's configs (each inherits a protocol)
    paper: str = ''  # citation
    code: str = ''  # official repository (and commit read)
    converter: str | None = (
        None  # 'package.module:function', called as f(src, dst, trusted=False) -> dict
    )
    aliases: tuple[str, ...] = ()  # names the method's rows carry in results/reported.csv
    # 'package.module:NAME': the authors' released checkpoints (harness.official.ReleasedCheckpoint)
    released: str | None = None
    distribution: str = field(default='', compare=False)  # filled in by discover()

    def config_files(self) -> list[Path]:
        return sorted(p for p in Path(self.configs).glob('*.py') if not p.name.startswith('_'))

    def load_converter(self) -> Callable[..., dict]:
        if not self.converter:
            raise ValueError(f'method {self.name!r} has no checkpoint converter')
        module, _, attr = self.converter.partition(':')
        return getattr(importlib.import_module(module), attr)


class PluginSkipped(HarnessWarning):
    """A method plugin was not loaded (see :func:`discover`); every other method works."""


@dataclass(frozen=True)
class SkippedPlugin:
    """An entry point :func:`discover` skipped, and why (the text of its warning)."""

    entry_point: str  # 'name = module:attr'
    distribution: str
    reason: str


_CACHE: dict[str, MethodSpec] | None = None
_SKIPPED: list[SkippedPlugin] = []


def discover(refresh: bool = False) -> dict[str, MethodSpec]:
    """Load every method plugin once, each on its own; a plugin that cannot be loaded or that
    clashes with another (module docstring) is skipped with one :class:`PluginSkipped` warning."""
    global _CACHE, _SKIPPED
    if _CACHE is not None and not refresh:
        return _CACHE
    # The harness's parts own their names before any plugin registers one (the registries import
    # them lazily otherwise, and a plugin could take a name first).
    for reg in _registries():
        reg.import_from_location()
    eps = _in_load_order(entry_points(group=GROUP))
    found: dict[str, MethodSpec] = {}
    skipped: list[SkippedPlugin] = []
    for ep in eps:
        dist = _distribution(ep)
        spec, reason = _load(ep, dist, found, eps)
        if reason is not None:
            skipped.append(SkippedPlugin(f'{ep.name} = {ep.value}', dist, reason))
            warnings.warn(reason, PluginSkipped, stacklevel=2)
            continue
        found[spec.name] = MethodSpec(**{**spec.__dict__, 'distribution': dist})
    _CACHE, _SKIPPED = found, skipped
    return found


def skipped_plugins() -> list[SkippedPlugin]:
    """The plugins the last :func:`discover` skipped (it runs discovery if none ran yet)."""
    discover()
    return list(_SKIPPED)


def _registries() -> list[Any]:
    """Every registry of the ``harness`` scope (:mod:`harness.registry`)."""
    from mmengine.registry import Registry

    return [r for r in vars(_registry).values() if isinstance(r, Registry)]


def _distribution(ep: EntryPoint) -> str:
    return f'{ep.dist.name} {ep.dist.version}' if ep.dist is not None else 'unknown'


def _in_load_order(eps: Iterable[EntryPoint]) -> list[EntryPoint]:
    """The harness's built-in methods first, then the other plugins by distribution and name (so
    which of two clashing plugins loads does not depend on the order of sys.path)."""

    def key(ep: EntryPoint) -> tuple:
        dist = ep.dist.name if ep.dist is not None else ''
        return (dist != HARNESS_DISTRIBUTION, dist, ep.name)

    return sorted(eps, key=key)


def _registered() -> dict[tuple[Any, str], Any]:
    """``{(registry, name): registered object}`` over the harness registries, now."""
    return {(reg, name): obj for reg in _registries() for name, obj in reg.module_dict.items()}


def _undo(ep: EntryPoint, before: dict[tuple[Any, str], Any]) -> None:
    """Put the registries back as ``before`` (what a skipped plugin registered is taken out) and
    forget its modules, so that a later discovery imports it again and decides again."""
    for (reg, name), obj in _registered().items():
        if (reg, name) not in before:
            reg.module_dict.pop(name)
        elif before[reg, name] is not obj:
            reg.module_dict[name] = before[reg, name]
    for module in [m for m in sys.modules if m == ep.module or m.startswith(ep.module + '.')]:
        del sys.modules[module]


_ALREADY = re.compile(
    r'^(?P<name>\S+) is already registered in (?P<registry>.+) at (?P<module>\S+)$'
)


def _load(
    ep: EntryPoint, dist: str, found: dict[str, MethodSpec], eps: list[EntryPoint]
) -> tuple[MethodSpec | None, str | None]:
    """``(its MethodSpec, None)``, or ``(None, why it is skipped)`` with what it registered
    taken out again."""
    who = f'method plugin {ep.name!r} ({dist})'
    before = _registered()
    try:
        spec = ep.load()
    except Exception as err:
        _undo(ep, before)
        clash = _ALREADY.match(str(err.args[0])) if isinstance(err, KeyError) and err.args else None
        if clash:
            owner = _owner(clash['module'], eps)
            return None, (
                f'{who} is skipped: it registers {clash["name"]} in the harness '
                f'{clash["registry"]} registry, which {owner} already owns; rename one of the '
                f'two or uninstall one plugin (every other method works)'
            )
        cause = f'{type(err).__name__}: {" ".join(str(err).split())[:300]}'
        return None, (
            f'{who} is skipped: loading {ep.value} failed ({cause}); fix or uninstall it '
            f'(every other method works)'
        )
    replaced = [
        key for key, obj in _registered().items() if key in before and obj is not before[key]
    ]
    if replaced:
        (reg, name) = replaced[0]
        owner = _owner(before[reg, name].__module__, eps)
        _undo(ep, before)
        return None, (
            f'{who} is skipped: it replaces {name} in the harness {reg.name} registry, which '
            f'{owner} owns (register_module(force=True)); rename it or uninstall one plugin '
            f'(every other method works)'
        )
    why = None
    if not isinstance(spec, MethodSpec):
        why = (
            f'{who} is skipped: entry point {ep.name} = {ep.value} in group {GROUP} must name a '
            f'harness.plugins.MethodSpec, got {type(spec).__name__}'
        )
    elif spec.name in found:
        why = (
            f'{who} is skipped: it defines method {spec.name!r}, which '
            f'{found[spec.name].distribution} defines too; uninstall one of them'
        )
    if why is not None:
        _undo(ep, before)
        return None, why
    return spec, None


def _owner(module: str, eps: Iterable[EntryPoint]) -> str:
    """Who registered a part defined in ``module``: the harness, or the plugin whose package holds
    it (the longest module prefix shared with its entry point)."""
    if module == 'harness' or module.startswith('harness.'):
        return f'the harness ({module})'
    parts = module.split('.')

    def shared(ep: EntryPoint) -> int:
        theirs = ep.module.split('.')
        n = 0
        while n < min(len(parts), len(theirs)) and parts[n] == theirs[n]:
            n += 1
        return n

    best = max(eps, key=shared, default=None)
    if best is not None and shared(best) > 0:
        return f'method plugin {best.name!r} ({_distribution(best)}, {module})'
    return module


def get_method(name: str) -> MethodSpec:
    methods = discover()
    if name not in methods:
        skipped = [s.reason for s in _SKIPPED if s.entry_point.split(' = ')[0] == name]
        raise KeyError(
            f'no method {name!r} is installed; found: {", ".join(sorted(methods)) or "none"} '
            f'(plugins register in the {GROUP!r} entry-point group)'
            + ''.join(f'; {reason}' for reason in skipped)
        )
    return methods[name]


def resolve_config(config: str | Path) -> Path:
    """A config file: ``config`` itself when it is a file, else the installed plugins' config of
    that name (``agw_sysu`` or ``agw_sysu.py``, as OpenMMLab users type it)."""
    path = Path(config)
    if path.is_file():
        return path
    if len(path.parts) != 1 or path.suffix not in ('', '.py'):
        raise FileNotFoundError(f'config file {path} does not exist')
    name = path.stem
    found = [
        (method, f)
        for method, spec in sorted(discover().items())
        for f in spec.config_files()
        if f.stem == name
    ]
    if len(found) == 1:
        return found[0][1]
    if found:
        where = ', '.join(f'{f} ({method})' for method, f in found)
        raise ValueError(
            f'config name {name} is shipped by several plugins: {where}; pass the file path'
        )
    known = sorted(f.stem for spec in discover().values() for f in spec.config_files())
    close = difflib.get_close_matches(name, known, n=3)
    hint = f'did you mean {", ".join(close)}? ' if close else ''
    raise FileNotFoundError(
        f'{config} is neither a config file nor the name of an installed '
        f"plugin's config; {hint}`vireid methods` lists every config name"
    )
