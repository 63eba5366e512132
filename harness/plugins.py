"""Method plugins: packages found through the ``vireid.methods`` entry-point group.

A plugin's entry point names a :class:`MethodSpec`; loading it imports the plugin package, whose
``@MODELS.register_module()`` calls fill the harness registries. Built-in methods are declared the
same way in ``pyproject.toml``, so an external ``pip install``-ed package is on equal footing.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

GROUP = 'vireid.methods'


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


_CACHE: dict[str, MethodSpec] | None = None


def discover(refresh: bool = False) -> dict[str, MethodSpec]:
    """Load every method plugin once; duplicate names are refused, not shadowed."""
    global _CACHE
    if _CACHE is not None and not refresh:
        return _CACHE
    found: dict[str, MethodSpec] = {}
    for ep in entry_points(group=GROUP):
        spec = ep.load()
        if not isinstance(spec, MethodSpec):
            raise TypeError(
                f'entry point {ep.name} = {ep.value} in group {GROUP} must name a '
                f'harness.plugins.MethodSpec, got {type(spec).__name__}'
            )
        dist = f'{ep.dist.name} {ep.dist.version}' if ep.dist is not None else 'unknown'
        if spec.name in found:
            raise ValueError(
                f'two plugins define method {spec.name!r}: {found[spec.name].distribution} '
                f'and {dist}; uninstall one of them'
            )
        found[spec.name] = MethodSpec(**{**spec.__dict__, 'distribution': dist})
    _CACHE = found
    return found


def get_method(name: str) -> MethodSpec:
    methods = discover()
    if name not in methods:
        raise KeyError(
            f'no method {name!r} is installed; found: {", ".join(sorted(methods)) or "none"} '
            f'(plugins register in the {GROUP!r} entry-point group)'
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
