"""Loading a method config over its protocol base, checking overrides, refusing protocol changes.

A config has three layers (``protocols/configs/``): the runtime settings every run shares
(``_runtime.py``: logging, checkpoint keeping, visualizer, hooks, environment), the protocol base
that includes them (``sysu.py``, ``regdb.py``, ``llcm.py``: what is trained and tested, and how),
and the method config laid over both. Runtime settings may change freely and reach the mmengine
Runner; protocol fields may not (unless the run is labelled non-comparable); method fields are the
method's own.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import inspect
import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from mmengine.config import Config

import protocols
from harness.data.cache import DEFAULT_RESIZE_FILTER, check_resize_filter
from harness.engine import backends
from harness.engine.selection import check_criterion
from harness.errors import ConfigError
from harness.records import HASH_SCHEME
from protocols.datasets import DATASETS
from protocols.evaluation import check_protocol

PROTOCOL_CONFIG_DIR = Path(protocols.__file__).parent / 'configs'
RUNTIME_CONFIG = PROTOCOL_CONFIG_DIR / '_runtime.py'
# Set per machine or varied by the leaderboard, so changing them keeps results comparable.
FREE_KEYS = ('data_root', 'protocol.split')
# May change, but the run is then labelled optimistic (test-set model selection).
LABELLED_KEYS = ('selection',)
SELECTION_RULES = ('final', 'best-test-rank1')
# Keys the engine reads when present (with a default otherwise), so no config needs to set them.
# fmt: off
OPTIONAL_KEYS = (
    'selection.epochs',                      # evaluated epochs of the optimistic rule
    'selection.criterion',                   # what the optimistic rule maximises
    'resize_filter', 'backends',             # decode-once resize; TF32/cuDNN switches
    'train_dataloader.num_workers', 'train_dataloader.batch_size',
    'test.batch_size', 'test.num_workers', 'test.distance', 'test.keep_features',
    'amp.enabled', 'amp.dtype', 'channels_last', 'cache_dir',
    'custom_hooks', 'param_scheduler', 'train_pipeline', 'train_views',
    'entry.method', 'entry.kind', 'entry.label', 'entry.row',
    'randomness.diff_rank_seed',
)
# Keys of the method layer the engine reads (the runtime and protocol layers hold their own keys):
# what a method config is made of, besides OPTIONAL_KEYS.
METHOD_KEYS = (
    'protocol_base', 'method_base', 'model', 'input_size', 'sampler', 'optim_wrapper',
    'train_cfg.max_epochs',
    'config_file',                           # the config's own path, in a dumped run config
)
# What mmengine's DefaultOptimWrapperConstructor reads from optim_wrapper.paramwise_cfg.
PARAMWISE_KEYS = tuple(
    f'optim_wrapper.paramwise_cfg.{k}'
    for k in (
        'custom_keys', 'bias_lr_mult', 'bias_decay_mult', 'norm_decay_mult', 'dwconv_decay_mult',
        'flat_decay_mult', 'dcn_offset_lr_mult', 'bypass_duplicate',
    )
)
# fmt: on
# Components the engine builds with a default type when the config names none.
DEFAULT_TYPES = {'optim_wrapper': 'OptimWrapper'}
# Arguments mmengine takes out of a component's dict before it calls the constructor.
EXTRA_ARGUMENTS = {'optim_wrapper': ('constructor', 'paramwise_cfg')}


class ProtocolChangeError(ConfigError):
    """A config changes a field the protocol owns."""


def protocol_config_path(name: str) -> Path:
    path = PROTOCOL_CONFIG_DIR / f'{name}.py'
    if name.startswith('_') or not path.is_file():
        known = sorted(
            p.stem for p in PROTOCOL_CONFIG_DIR.glob('*.py') if not p.stem.startswith('_')
        )
        raise ConfigError(
            f'protocol_base = {name!r} names no protocol config; choose one of {known}'
        )
    return path


def read_config(path: str | Path) -> Config:
    """``Config.fromfile`` with a message naming the file (and line) when it cannot be read.

    A plain config (``_base_`` style, the project's) is read with its imports executed: mmengine's
    default (lazy) reading turns ``from nowhere import x`` into a name that silently vanishes.
    """
    try:
        return Config.fromfile(str(path), lazy_import=None if _uses_read_base(path) else False)
    except OSError:
        raise  # unreadable: the CLI names the path and the fix
    except ImportError as err:
        where = _import_line(path, err.name)
        raise ConfigError(f'{where}: an import fails ({err}); fix or remove it') from None
    except SyntaxError as err:
        cause = err.__cause__ if isinstance(err.__cause__, SyntaxError) else err
        try:  # mmengine's own message names a temporary copy and no line
            ast.parse(Path(path).read_text(encoding='utf-8'), str(path))
        except SyntaxError as exact:
            cause = exact
        except (OSError, UnicodeDecodeError, ValueError):
            pass
        where = f' line {cause.lineno}' if cause.lineno else ''
        raise ConfigError(
            f'{path}{where}: syntax error ({cause.msg}); fix the config file'
        ) from None
    except Exception as err:
        first = str(err).splitlines()[0] if str(err) else ''
        raise ConfigError(
            f'{path} cannot be read as a config ({type(err).__name__}: {first}); '
            'fix the config file'
        ) from None


def _uses_read_base(path: str | Path) -> bool:
    """Whether the config file is a lazy (``with read_base():``) config, which mmengine must read
    lazily; an unparsable file is read the plain way (mmengine then names its syntax error)."""
    try:
        tree = ast.parse(Path(path).read_text(encoding='utf-8'))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return False
    return any(isinstance(node, ast.With) for node in tree.body)


def _import_line(path: str | Path, module: str | None) -> str:
    """``'FILE line N'`` of the import of ``module`` in the config or its ``_base_`` files (the
    file alone when it is not found)."""
    for file in (*_base_files(Path(path)), Path(path)):
        try:
            tree = ast.parse(file.read_text(encoding='utf-8'))
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            names = (
                [node.module or '']
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            if module and any(n == module or n.startswith(module + '.') for n in names):
                return f'{file} line {node.lineno}'
    return str(path)


def _base_files(path: Path) -> list[Path]:
    """The files a config includes through mmengine's ``_base_`` (relative paths), bases first."""
    try:
        tree = ast.parse(path.read_text(encoding='utf-8'))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return []
    out: list[Path] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets
        ):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            for name in [value] if isinstance(value, str) else list(value):
                base = (path.parent / str(name)).resolve()
                if base.is_file():
                    out += [*_base_files(base), base]
    return out


def method_config_path(ref: str) -> Path:
    """``'agw/agw_demo_sysu'`` -> the file ``agw_demo_sysu.py`` among the installed method
    ``agw``'s configs (what a ``method_base`` names)."""
    from harness.plugins import get_method

    method, sep, stem = str(ref).partition('/')
    if not (method and sep and stem):
        raise ConfigError(
            f"method_base = {ref!r}; expected 'method/config stem', e.g. 'agw/agw_demo_sysu'"
        )
    try:
        spec = get_method(method)
    except KeyError as err:
        raise ConfigError(f'method_base = {ref!r}: {err.args[0]}') from None
    path = Path(spec.configs) / f'{stem}.py'
    if not path.is_file():
        known = ', '.join(p.stem for p in spec.config_files())
        raise ConfigError(
            f'method_base = {ref!r}: method {method!r} has no config {stem}.py '
            f'(its configs: {known})'
        )
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
    cfg = read_config(path)
    ref = cfg.get('method_base')
    if ref is None:
        return cfg
    base_path = method_config_path(ref)
    seen = (*_seen, path.resolve())
    if base_path.resolve() in seen:
        chain = ' -> '.join(str(p) for p in (*seen, base_path))
        raise ConfigError(f'method_base loops: {chain}')
    base = method_config(base_path, seen)
    own = cfg.to_dict()
    own.pop('method_base')
    _check_own_entry(path, ref, own.get('entry'), base.get('entry'))
    base.merge_from_dict(own)
    return base


def _check_own_entry(path: Path, ref: str, entry: Any, inherited: Any) -> None:
    """A config laid over another method's config names its own method and row label: inherited,
    its runs would be recorded (and tabulated) as the base method's."""
    missing = [k for k in ('method', 'label') if not (isinstance(entry, Mapping) and entry.get(k))]
    if not missing:
        return
    was = dict(inherited) if isinstance(inherited, Mapping) else {}
    raise ConfigError(
        f'{path}: method_base = {ref!r} but the config sets no entry '
        f'{" and no ".join(missing)} of its own, so its runs would be recorded as '
        f'{was.get("method", "the base method")!r} ({was.get("label", "its label")!r}). Add '
        f"entry = dict(method='<your method>', kind='{was.get('kind', 'full')}', "
        f"label='<your row label>') to {path.name}"
    )


def load_config(path: str | Path, cfg_options: Mapping[str, Any] | None = None) -> Config:
    """The method config at ``path`` (over its ``method_base``, if any) laid over
    ``protocols/configs/<protocol_base>.py``.

    Plugins installed anywhere work, because the protocol is found by name rather than by a
    relative ``_base_`` path (mmengine's ``pkg::`` bases need pkg_resources, gone here).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f'config file {path} does not exist; list the configs with `vireid methods`'
        )
    if not path.is_file():
        raise ConfigError(f'config {path} is a folder; give a config file (e.g. {path}/<name>.py)')
    method = method_config(path)
    base_name = method.get('protocol_base')
    if base_name is None:
        raise ConfigError(
            f"{path} sets no protocol_base; add protocol_base = 'sysu' (or 'regdb', 'llcm') "
            'so the config inherits the protocol every method shares'
        )
    cfg = read_config(protocol_config_path(base_name))
    layers = cfg.to_dict()  # the runtime and protocol layers, before the method's
    cfg.merge_from_dict(method.to_dict())
    check_config_keys(path, method.to_dict(), cfg.to_dict(), layers)
    _complete_protocol(cfg, path)
    if cfg_options:
        check_options(cfg, cfg_options)
        cfg.merge_from_dict(dict(cfg_options))
        _complete_protocol(cfg, path)
    selection = cfg.get('selection', {}).get('rule', 'final')
    if selection not in SELECTION_RULES:
        raise ConfigError(
            f'selection.rule = {selection!r} in {path}; choose one of {SELECTION_RULES}'
        )
    check_criterion(cfg.get('selection', {}).get('criterion', 'mean-r1'))
    check_resize_filter(cfg.get('resize_filter', DEFAULT_RESIZE_FILTER))
    backends.resolve(cfg.get('backends'))
    cfg.config_file = str(path)
    return cfg


def _complete_protocol(cfg: Config, path: Path) -> None:
    """Validate ``cfg.protocol`` and fill in the protocol's defaults (every field gets a key)."""
    try:
        cfg.protocol = check_protocol(cfg.protocol['dataset'], cfg.protocol)
    except ValueError as err:
        raise ConfigError(f'{path}: {err}') from None


# --------------------------------------------------------------------------------------------------
# --cfg-options: every key must exist (or be one a component accepts), every value fit its key


def check_options(cfg: Config, options: Mapping[str, Any]) -> None:
    """Refuse an override whose key the run would not use (a typo would otherwise be ignored and
    the run recorded as if it had the setting), naming the closest known key, and a value of the
    wrong kind, naming its key.

    A key is known when the config (runtime, protocol or method layer) has it, when the engine
    reads it (:data:`OPTIONAL_KEYS`), or when it lies under a component that checks its own
    arguments: a dict with a registered ``type`` whose constructor takes that argument (e.g.
    ``model.margin``, ``default_hooks.logger.interval``), or a dict inside a model (the model
    validates its sub-configs such as ``model.backbone``).
    """
    tree = cfg.to_dict()
    for key, value in options.items():
        if not isinstance(key, str) or not key or any(not part for part in key.split('.')):
            raise ConfigError(
                f'--cfg-options: {key!r} is not a config key like train_cfg.max_epochs'
            )
        if key in OPTIONAL_KEYS:
            continue
        _check_key(tree, key)
        old = _lookup(tree, key.split('.'))
        if old is not _MISSING:
            _check_value(key, old, value)


_MISSING = object()


def _lookup(tree: Any, parts: list[str]) -> Any:
    node = tree
    for part in parts:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _check_key(tree: dict, key: str) -> None:
    parts = key.split('.')
    node: Any = tree
    typed_above = False  # inside a component that validates its own arguments
    for depth, part in enumerate(parts):
        here = '.'.join(parts[:depth])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(
                    f'--cfg-options {key}: {here} is a list of {len(node)} item(s); '
                    f'address an item as {here}.0 ... {here}.{max(len(node) - 1, 0)}'
                )
            node = node[int(part)]
            continue
        if not isinstance(node, Mapping):
            raise ConfigError(
                f'--cfg-options {key}: {here} is {node!r}, not a dict, so it has no '
                f'key {part!r}; set {here}=VALUE instead'
            )
        if part in node:
            typed_above = typed_above or _is_component(node)
            node = node[part]
            continue
        accepts = _accepted_arguments(node) if depth else None
        if accepts is not None and (part in accepts or accepts == {'**'}):
            return
        if accepts is None and (typed_above or (depth and parts[0] == 'model')):
            return  # a sub-config the enclosing component validates when it is built
        known = sorted(
            {*_flat_keys(tree), *OPTIONAL_KEYS}
            | ({f'{here}.{a}' for a in accepts if a != '**'} if accepts else set())
        )
        raise ConfigError(_unknown_key_message(key, known, tree))


def _unknown_key_message(key: str, known: list[str], tree: dict, where: str = '') -> str:
    """'--cfg-options KEY: no such config key ...; did you mean ...?' (``where``: 'FILE: KEY ...'
    for a key set in a config file)."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        hint = f'did you mean {close[0]}?'
    else:
        parent = key.rsplit('.', 1)[0] if '.' in key else ''
        siblings = [k for k in known if parent and k.startswith(parent + '.')]
        hint = (
            f'keys under {parent}: {", ".join(siblings[:12])}'
            if siblings
            else f'top-level keys: {", ".join(sorted(tree))}'
        )
    if where:
        return f'{where}: {key}: no such config key (the run would ignore it); {hint}'
    return f'--cfg-options {key}: no such config key (the run would ignore it); {hint}'


def _check_value(key: str, old: Any, new: Any) -> None:
    number = (int, float)
    if isinstance(old, bool):
        ok = isinstance(new, (bool, str))
        kind = 'True or False'
    elif isinstance(old, int):
        ok = isinstance(new, int) and not isinstance(new, bool)
        kind = f'an integer (like {old})'
    elif isinstance(old, float):
        ok = isinstance(new, number) and not isinstance(new, bool)
        kind = f'a number (like {old})'
    elif isinstance(old, (list, tuple)):
        ok = isinstance(new, (list, tuple))
        kind = f'a list like {_fmt_list(old)}'
    elif isinstance(old, Mapping):
        ok = isinstance(new, Mapping)
        kind = f'a dict; set its keys one by one ({key}.{next(iter(old), "KEY")}=VALUE)'
    else:
        return
    if not ok:
        raise ConfigError(f'--cfg-options {key}={new!r}: expected {kind}')


def _fmt_list(value: list | tuple) -> str:
    if all(isinstance(v, (int, float, str)) for v in value):
        return '[' + ','.join(map(str, value)) + ']'
    return '[...]'


def _is_component(node: Mapping) -> bool:
    return isinstance(node.get('type'), str)


def _accepted_arguments(node: Mapping) -> set[str] | None:
    """Constructor arguments of the registered ``type`` of ``node`` ({'**'}: any), else None."""
    if not _is_component(node):
        return None
    return _constructor_arguments(node['type'])


def _constructor_arguments(type_name: str) -> set[str] | None:
    cls = _registered_class(type_name)
    if cls is None:
        return None
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return {'**'}
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _registered_class(type_name: str) -> type | None:
    """The class a ``type=`` names in the harness scope (method plugins and mmengine included)."""
    import mmengine.hooks  # noqa: F401  (registers mmengine's hooks, optimizers, visualizers)
    import mmengine.optim  # noqa: F401
    import mmengine.runner  # noqa: F401
    import mmengine.visualization  # noqa: F401
    from mmengine.registry import DefaultScope

    from harness import registry
    from harness.plugins import discover

    discover()
    with DefaultScope.overwrite_default_scope(registry.SCOPE):
        for reg in (
            registry.MODELS,
            registry.HOOKS,
            registry.VISBACKENDS,
            registry.VISUALIZERS,
            registry.LOG_PROCESSORS,
            registry.OPTIMIZERS,
            registry.OPTIM_WRAPPERS,
            registry.PARAM_SCHEDULERS,
            registry.DATA_SAMPLERS,
            registry.TRANSFORMS,
        ):
            try:
                cls = reg.get(type_name)
            except Exception:  # a registry that cannot import its locations says nothing here
                cls = None
            if cls is not None:
                return cls
    return None


# --------------------------------------------------------------------------------------------------
# Config files: the same rule for the keys a method config (and what it inherits) sets


def check_config_keys(
    path: str | Path, method: Mapping[str, Any], final: Mapping[str, Any], layers: Mapping
) -> None:
    """Refuse a key of the method layer (the config at ``path``, its ``_base_`` files and its
    ``method_base`` chain) that the run would not use, naming the file that sets it and the
    closest known key: a typo in a config file would otherwise be ignored like one in
    ``--cfg-options``.

    The rule (docs/trust.md, "Configs"): a key the runtime or protocol layer (``layers``) sets,
    or one the engine reads (:data:`METHOD_KEYS`, :data:`OPTIONAL_KEYS`), is known; inside a dict
    with a registered ``type`` (as the final config ``final`` has it), a key must be an argument
    of that type's constructor; a dict inside such a component that has no type of its own (e.g.
    ``model.losses``) holds names the component reads and checks itself, and the typed dicts in
    it are checked the same way (with the keys the component takes out of them first, which its
    class declares in ``subconfig_keys``, e.g. ``{'losses': LossSet.SPEC_KEYS}``).
    """
    reference = dict(layers)
    proto = reference.get('protocol')
    if isinstance(proto, Mapping) and proto.get('dataset') in DATASETS:
        # Every protocol field is known (its defaults fill in what the base leaves unset).
        reference['protocol'] = check_protocol(proto['dataset'], proto)
    known = set(_flat_keys(reference)) | {*OPTIONAL_KEYS, *METHOD_KEYS, *PARAMWISE_KEYS}
    known |= {f'backends.{k}' for k in backends.DEFAULTS}
    known |= {k.rsplit('.', i)[0] for k in list(known) for i in range(1, k.count('.') + 1)}
    bad: list[tuple[str, list[str]]] = []
    _walk_keys(method, final, '', 'engine', known, bad)
    if not bad:
        return
    key, candidates = bad[0]
    origin = _origin(Path(path), key)
    message = _unknown_key_message(key, sorted(candidates), dict(final), where=str(origin))
    more = [k for k, _ in bad[1:]]
    if more:
        message += f' (also unknown: {", ".join(more[:5])}{", ..." if len(more) > 5 else ""})'
    raise ConfigError(message)


def _walk_keys(
    node: Mapping,
    final: Any,
    path: str,
    mode: str,
    known: set[str],
    bad: list,
    extra: tuple[str, ...] = (),
) -> None:
    """Check the keys of ``node`` (a dict of the method layer at ``path``) in ``mode``: 'engine'
    (the key must be known), 'component' (a constructor argument of ``final``'s type, or one of
    ``extra``) or 'free' (names a component reads itself); ``final`` is the final config's dict
    at ``path``."""
    final = final if isinstance(final, Mapping) else {}
    accepts: set[str] | None = None
    subconfigs: Mapping[str, tuple[str, ...]] = {}
    if _is_component(final) or path in DEFAULT_TYPES:
        type_name = final.get('type') or DEFAULT_TYPES[path]
        accepts = _constructor_arguments(type_name)
        if accepts is not None:
            mode = 'component'
            accepts = accepts | {'type', *EXTRA_ARGUMENTS.get(path, ()), *extra}
            subconfigs = getattr(_registered_class(type_name), 'subconfig_keys', None) or {}
        elif mode == 'engine':
            mode = 'free'  # an unregistered type: building it names the type
    for key, value in node.items():
        if key == '_delete_':
            continue
        here = f'{path}.{key}' if path else key
        if mode == 'component' and '**' not in accepts and key not in accepts:
            bad.append((here, [f'{path}.{a}' for a in accepts] + sorted(known)))
            continue
        if mode == 'engine' and here not in known:
            bad.append((here, sorted(known)))
            continue
        if key in subconfigs and isinstance(value, Mapping):  # {name: sub-config} it builds
            entries = final.get(key) if isinstance(final.get(key), Mapping) else {}
            for name, entry in value.items():
                if isinstance(entry, Mapping):
                    _walk_keys(
                        entry,
                        entries.get(name),
                        f'{here}.{name}',
                        'free',
                        known,
                        bad,
                        tuple(subconfigs[key]),
                    )
            continue
        _walk_value(value, final.get(key), here, mode, known, bad)


def _walk_value(value: Any, final: Any, here: str, mode: str, known: set[str], bad: list) -> None:
    if isinstance(value, Mapping):
        if any(k.startswith(here + '.') for k in known) and not _is_component(final or {}):
            child = 'engine'  # a section whose keys the engine (or mmengine) reads by name
        else:
            child = 'free'  # inside a component, or a value the engine takes whole
        _walk_keys(value, final, here, child, known, bad)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            if isinstance(item, Mapping):
                _walk_keys(item, item, f'{here}.{i}', 'free', known, bad)


def _origin(path: Path, key: str) -> Path:
    """The config file that sets ``key``: the first, bases first, of the ``method_base`` chain of
    ``path`` and the ``_base_`` files each includes, whose own tree holds it."""
    chain: list[Path] = []
    current: Path | None = path
    while current is not None and current not in chain:
        chain.insert(0, current)
        try:
            ref = Config.fromfile(str(current), lazy_import=False).get('method_base')
            current = method_config_path(ref) if ref else None
        except Exception:
            current = None
    parts = key.split('.')
    for file in [f for c in chain for f in (*_base_files(c), c)]:
        try:
            tree = Config.fromfile(str(file), lazy_import=False).to_dict()
        except Exception:
            continue
        if _lookup(tree, parts) is not _MISSING:
            return file
    return path


def _flat_keys(tree: Any, prefix: str = '') -> list[str]:
    out = []
    if isinstance(tree, Mapping):
        for k, v in tree.items():
            out.append(f'{prefix}{k}')
            out += _flat_keys(v, f'{prefix}{k}.')
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += _flat_keys(v, f'{prefix}{i}.')
    return out


# --------------------------------------------------------------------------------------------------
# Runtime settings and protocol fields


@cache
def runtime_keys() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(runtime key paths, top-level keys only the runtime layer sets) from ``_runtime.py``."""
    runtime = Config.fromfile(str(RUNTIME_CONFIG)).to_dict()
    protocol_tops: set[str] = set()
    for path in PROTOCOL_CONFIG_DIR.glob('*.py'):
        if not path.stem.startswith('_'):
            protocol_tops |= _assigned_names(path)
    return tuple(_flatten(runtime)), tuple(sorted(set(runtime) - protocol_tops))


def is_runtime_key(key: str) -> bool:
    """Whether ``key`` is a runtime setting (free to change; it never changes a result)."""
    paths, tops = runtime_keys()
    return key.split('.')[0] in tops or any(key == p or key.startswith(p + '.') for p in paths)


def _drop_runtime(tree: Mapping, prefix: str = '') -> dict:
    out = {}
    for k, v in tree.items():
        key = f'{prefix}{k}'
        if is_runtime_key(key):
            continue
        out[k] = _drop_runtime(v, key + '.') if isinstance(v, Mapping) else v
    return out


def _assigned_names(path: Path) -> set[str]:
    """Top-level names a config file assigns itself (not through ``_base_``)."""
    tree = ast.parse(path.read_text(encoding='utf-8'))
    names = set()
    for node in tree.body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names - {'_base_'}


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
    """Protocol-owned fields whose final value differs from the protocol base:
    key -> (base, final)."""
    base = Config.fromfile(str(protocol_config_path(cfg.protocol_base))).to_dict()
    base['protocol'] = check_protocol(base['protocol']['dataset'], base['protocol'])
    final = cfg.to_dict()
    changes = {}
    for top in base:
        if top in LABELLED_KEYS:
            continue
        b, f = _flatten(base[top], f'{top}.'), _flatten(final.get(top, '<removed>'), f'{top}.')
        for key in sorted(set(b) | set(f)):
            if key in FREE_KEYS or is_runtime_key(key):
                continue
            if b.get(key, '<absent>') == f.get(key, '<absent>'):
                continue
            changes[key] = (b.get(key, '<absent>'), f.get(key, '<absent>'))
    return changes


def check_protocol_unchanged(cfg: Config, allow: bool = False) -> bool:
    """True when the config keeps the protocol; raises unless ``allow`` when it does not."""
    changes = protocol_changes(cfg)
    if changes and not allow:
        lines = '\n'.join(f'  {k}: protocol {b!r} -> config {f!r}' for k, (b, f) in changes.items())
        raise ProtocolChangeError(
            f'{cfg.config_file} changes protocol fields, '
            f'so its results would not be comparable:\n{lines}\n'
            'Remove these settings from the method config / --cfg-options, or pass '
            '--allow-protocol-change to run it anyway (its records are then marked non-comparable).'
        )
    return not changes


def is_optimistic(cfg: Config) -> bool:
    return cfg.get('selection', {}).get('rule', 'final') != 'final'


def _hashed(cfg: Config | Mapping) -> dict:
    """What :func:`config_hash` hashes: the effective config without what does not change what
    was run: machine-specific keys (``data_root``, and where the files are), the RegDB split a
    leaderboard varies (:data:`FREE_KEYS`: the splits of one config are one table cell) and the
    runtime settings (logging, checkpoint keeping, ...)."""
    tree = cfg.to_dict() if isinstance(cfg, Config) else dict(cfg)
    tree = {k: v for k, v in tree.items() if k not in ('data_root', 'config_file', 'work_dir')}
    tree = _drop_runtime(tree)
    for key in FREE_KEYS:
        head, _, leaf = key.rpartition('.')
        node = _lookup(tree, head.split('.')) if head else tree
        if isinstance(node, dict):
            node.pop(leaf, None)
    return tree


def config_hash(cfg: Config | Mapping) -> str:
    """Hash of the effective config (what was run), stable across dict orderings; the same for
    every RegDB split and data root of a config (see :func:`_hashed`)."""
    text = json.dumps(_hashed(cfg), sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()


def config_differences(old: Config | Mapping, new: Config | Mapping) -> dict[str, tuple]:
    """The hashed keys whose values differ between two configs: key -> (old, new)."""
    a, b = _flatten(_hashed(old)), _flatten(_hashed(new))
    return {
        k: (a.get(k, '<absent>'), b.get(k, '<absent>'))
        for k in sorted(set(a) | set(b))
        if _same(a.get(k, '<absent>')) != _same(b.get(k, '<absent>'))
    }


def _same(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def run_config_change(work_dir: str | Path, cfg: Config, recorded: Mapping) -> str | None:
    """Why the run in ``work_dir``, whose record or checkpoint meta is ``recorded`` (its
    ``config_hash`` and ``config_hash_scheme``), is not a run of ``cfg``; None when it is, or when
    nothing says (no hash recorded: a record written by something else).

    The run's own ``config.py`` (the effective config the engine dumps beside the record) names
    the keys that differ. A hash of an older scheme (:data:`~harness.records.HASH_SCHEME`; it
    hashed the RegDB split) cannot be compared with today's, so that file decides for it.
    """
    old_hash = recorded.get('config_hash')
    planned = config_hash(cfg)
    current = recorded.get('config_hash_scheme') == HASH_SCHEME
    if not old_hash or (current and old_hash == planned):
        return None
    dumped = Path(work_dir) / 'config.py'
    diff = None
    if dumped.is_file():
        try:
            diff = config_differences(Config.fromfile(str(dumped), lazy_import=False), cfg)
        except Exception:
            diff = None
    if diff:
        shown = [f'{k}: {a!r} -> {b!r}' for k, (a, b) in list(diff.items())[:8]]
        return '; '.join(shown) + (f'; and {len(diff) - 8} more' if len(diff) > 8 else '')
    if diff is not None and not current:
        return None  # an older hash, and the run's own config.py is this config
    return f'config hash {old_hash[:12]} recorded, {planned[:12]} now' + (
        '' if diff is not None else f' ({dumped} cannot be read to name the keys that differ)'
    )
