"""``vireid new-method``: write an installable method plugin to start a new method from.

The package it writes is what ``docs/adding-a-method.md`` describes, and nothing is left to fill
in before it runs: ``pyproject.toml`` with the ``vireid.methods`` entry point, the
:class:`~harness.plugins.MethodSpec`, a full and a demo config for every benchmark (SYSU-MM01,
RegDB, LLCM), one registered loss to edit, a learning-margin test and a README that names what a
method's README documents. ``pip install -e`` it and ``vireid methods`` lists it.

Two starting points:

- ``--from agw`` (the default): the configs compose the harness's generic ``CrossModalityReID``
  from registered parts, written out in the new SYSU-MM01 config (AGW's recipe, read from AGW's
  installed configs now), with AGW's triplet replaced by the new loss. The other configs inherit
  it with ``_base_`` and change only what AGW's own configs change for that dataset or demo.
- ``--from METHOD`` (any other installed method, e.g. one with its own model class): each config
  inherits that method's config by name (``method_base``), sets its own ``entry`` and adds the new
  loss to the method's loss set, on the input (and ``parts``, ``modalities``) of the base's first
  loss on ``pool`` or on another feature. Datasets the base method has no config for are left out
  (and said).
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.plugins import MethodSpec, discover

DATASETS = ('sysu', 'regdb', 'llcm')
DATASET_TITLES = {'sysu': 'SYSU-MM01', 'regdb': 'RegDB', 'llcm': 'LLCM'}
KINDS = ('full', 'demo')
# Keys of a config that name it rather than its recipe: each new config sets its own.
OWN_KEYS = ('protocol_base', 'entry')
NAME = re.compile(r'^[a-z][a-z0-9_]*$')
LINE = 100


@dataclass(frozen=True)
class Scaffold:
    """What :func:`write_plugin` wrote: the package folder, its files, and notes to print."""

    root: Path
    files: list[Path]
    notes: list[str]


def camel(name: str) -> str:
    """``my_method`` -> ``MyMethod``."""
    return ''.join(part[:1].upper() + part[1:] for part in name.split('_') if part)


def check_name(name: str, methods: Mapping[str, MethodSpec]) -> None:
    if not NAME.match(name) or keyword.iskeyword(name):
        raise ValueError(
            f'method name {name!r}: use lower-case letters, digits and _ , starting with a letter '
            '(it becomes a Python package name, config names and the run directories), e.g. '
            'my_method'
        )
    if name in methods:
        raise ValueError(
            f'a method {name!r} is installed already ({methods[name].distribution}); choose '
            'another name'
        )
    stems = {f.stem for spec in methods.values() for f in spec.config_files()}
    taken = sorted(s for s in stems if s.startswith(f'{name}_'))
    if taken:
        raise ValueError(
            f'configs named {name}_* exist already ({", ".join(taken)}); config names must be '
            'unique across installed methods: choose another name'
        )


# --------------------------------------------------------------------------------------------------
# Python source of config values


def py(value: Any, indent: int = 0, used: int | None = None) -> str:
    """``value`` as config source: ``dict(k=v)`` for identifier keys, on one line when it fits
    in :data:`LINE` columns (``used`` of them are taken on its line), else one item per line,
    indented four spaces deeper than ``indent``."""
    flat = _flat(value)
    used = indent if used is None else used
    if used + len(flat) + 1 <= LINE or not isinstance(value, (dict, list, tuple)) or not value:
        return flat
    inner = indent + 4
    if isinstance(value, dict):
        keys = [_key(k) for k in value] if _identifiers(value) else [f'{k!r}: ' for k in value]
        items = [f'{k}{py(v, inner, inner + len(k))}' for k, v in zip(keys, value.values())]
        opening, closing = ('dict(', ')') if _identifiers(value) else ('{', '}')
    else:
        items = [py(v, inner) for v in value]
        opening, closing = ('[', ']') if isinstance(value, list) else ('(', ')')
    body = ''.join(f'{" " * inner}{item},\n' for item in items)
    return f'{opening}\n{body}{" " * indent}{closing}'


def _identifiers(value: dict) -> bool:
    return all(isinstance(k, str) and k.isidentifier() and not keyword.iskeyword(k) for k in value)


def _key(key: Any) -> str:
    return f'{key}='


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        if _identifiers(value):
            return 'dict(' + ', '.join(f'{k}={_flat(v)}' for k, v in value.items()) + ')'
        return '{' + ', '.join(f'{k!r}: {_flat(v)}' for k, v in value.items()) + '}'
    if isinstance(value, list):
        return '[' + ', '.join(_flat(v) for v in value) + ']'
    if isinstance(value, tuple):
        inner = ', '.join(_flat(v) for v in value)
        return f'({inner},)' if len(value) == 1 else f'({inner})'
    return repr(value)


def overrides(base: Mapping[str, Any], target: Mapping[str, Any]) -> dict[str, Any]:
    """What a config laid over ``base`` (mmengine merge) must set to give ``target``: changed
    values, and ``_delete_=True`` on a dict that loses keys."""
    out: dict[str, Any] = {}
    for key, value in target.items():
        old = base.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            if set(old) - set(value):
                out[key] = dict(_delete_=True, **value)
            elif sub := overrides(old, value):
                out[key] = sub
        elif key not in base or old != value:
            out[key] = value
    return out


def _recipe_changes(base: Mapping[str, Any], target: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in overrides(base, target).items() if k not in OWN_KEYS}


def _assignments(values: Mapping[str, Any]) -> str:
    return ''.join(f'{k} = {py(v, 0, len(k) + 3)}\n' for k, v in values.items())


# --------------------------------------------------------------------------------------------------
# The base method's configs


def _plain(cfg: Any) -> dict[str, Any]:
    """A config as plain dicts, lists and tuples, without the keys only a file has."""
    tree = cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg)
    return {k: v for k, v in tree.items() if k not in ('_base_', 'method_base', 'config_file')}


def base_configs(spec: MethodSpec) -> dict[tuple[str, str], Path]:
    """``(kind, dataset) -> config file`` of the base method: its first config of each kind and
    dataset that is a method's main row (no ``entry.row``: ablations are left out)."""
    from harness.engine.config import method_config

    found: dict[tuple[str, str], Path] = {}
    for path in spec.config_files():
        cfg = method_config(path)
        entry = cfg.get('entry') or {}
        key = (entry.get('kind', 'full'), cfg.get('protocol_base'))
        if key[0] in KINDS and key[1] in DATASETS and not entry.get('row') and key not in found:
            found[key] = path
    return found


# --------------------------------------------------------------------------------------------------
# The files


def write_plugin(name: str, out: str | Path, base: str = 'agw') -> Scaffold:
    """Write the plugin package of method ``name`` into the folder ``out`` (which must not exist
    or be empty), starting from the installed method ``base``."""
    from harness.engine.config import method_config

    methods = discover()
    check_name(name, methods)
    if base not in methods:
        raise ValueError(
            f'--from {base}: no such method is installed; `vireid methods` lists them '
            f'({", ".join(sorted(methods))})'
        )
    root = Path(out)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(
            f'{root} exists and is not an empty folder; new-method writes a new package: give '
            '--out a new folder'
        )
    spec = methods[base]
    bases = base_configs(spec)
    if ('full', 'sysu') not in bases:
        raise ValueError(
            f'--from {base}: method {base!r} has no full SYSU-MM01 config to start from'
        )
    package = f'vireid_{name}'
    title = camel(name)
    loss = f'{title}Loss'
    loaded = {key: _plain(method_config(path)) for key, path in bases.items()}
    notes: list[str] = []
    files: dict[str, str] = {}
    if base == 'agw':
        configs = _composed_configs(name, title, loss, loaded)
    else:
        configs = _inherited_configs(name, title, loss, base, bases, loaded)
    missing = [DATASET_TITLES[ds] for ds in DATASETS if (f'{name}_{ds}.py') not in configs]
    if missing:
        notes.append(
            f'{base} has no config for {", ".join(missing)}: no config written for it (add one '
            'when the base method has it)'
        )
    for filename, text in configs.items():
        files[f'{package}/configs/{filename}'] = text
    files['pyproject.toml'] = _pyproject(name, package, title)
    files[f'{package}/__init__.py'] = _init(name, package, title, loss, base)
    files[f'{package}/losses.py'] = _losses(loss)
    files['tests/test_learning.py'] = _learning_test(name, package)
    files['README.md'] = _readme(name, package, title, loss, base, sorted(configs))
    written = []
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding='utf-8')
        written.append(path)
    return Scaffold(root, written, notes)


def _entry(name: str, title: str, kind: str) -> str:
    label = title if kind == 'full' else f'{title} (demo)'
    return f'entry = dict(method={name!r}, kind={kind!r}, label={label!r})\n'


def _with_loss(losses: Mapping[str, Any], name: str, loss: str) -> dict[str, Any]:
    """AGW's loss set with its triplet (``tri``) replaced by the new loss on the same input."""
    out = {k: v for k, v in losses.items() if k != 'tri'}
    out[name] = dict(type=loss, input='pool', weight=1.0, margin=0.3)
    return out


def _composed_configs(
    name: str, title: str, loss: str, loaded: Mapping[tuple[str, str], dict]
) -> dict[str, str]:
    full = loaded['full', 'sysu']
    recipe = {k: v for k, v in full.items() if k not in OWN_KEYS}
    recipe['model'] = dict(recipe['model'])
    recipe['model']['losses'] = _with_loss(recipe['model'].get('losses', {}), name, loss)
    configs = {
        f'{name}_sysu.py': (
            f'# {title} on SYSU-MM01. Generated by `vireid new-method {name}` from the AGW recipe\n'
            '# (its configs explain each value): the generic CrossModalityReID composed of\n'
            "# registered parts, each named by type=, with AGW's triplet replaced by this\n"
            f"# package's {loss} (losses.py). Edit it into your method's recipe.\n"
            "protocol_base = 'sysu'\n" + _entry(name, title, 'full') + '\n' + _assignments(recipe)
        )
    }
    demo = loaded.get(('demo', 'sysu'), full)
    configs[f'{name}_demo_sysu.py'] = (
        f'# CPU demo of {title} on the synthetic SYSU-MM01: the model and losses of\n'
        f"# {name}_sysu.py at toy size (AGW's demo settings: thin trunk, random init, small\n"
        '# input), so `vireid leaderboard --demo` trains it in a minute.\n'
        f"_base_ = ['./{name}_sysu.py']\n"
        + _entry(name, title, 'demo')
        + _assignments(_recipe_changes(full, demo))
    )
    for ds in DATASETS[1:]:
        for kind, parent in (('full', f'{name}_sysu'), ('demo', f'{name}_demo_sysu')):
            sysu = full if kind == 'full' else demo
            other = loaded.get((kind, ds))
            changed = _recipe_changes(sysu, other) if other else {}
            stem = f'{name}_{ds}' if kind == 'full' else f'{name}_demo_{ds}'
            what = f'CPU demo of {title}' if kind == 'demo' else title
            configs[f'{stem}.py'] = (
                f'# {what} on {DATASET_TITLES[ds]}: {parent}.py on the {DATASET_TITLES[ds]} '
                'protocol,\n'
                "# with what AGW's configs change for it.\n"
                f"_base_ = ['./{parent}.py']\n"
                f'protocol_base = {ds!r}\n' + _assignments(changed)
            )
    return configs


def _feature_loss(losses: Mapping[str, Any]) -> dict[str, Any]:
    """The ``input``/``parts``/``modalities`` of the base's first loss on ``pool``, else of its
    first loss on another feature (not logits): where a triplet-like loss fits in its loss set."""
    specs = [s for s in (losses or {}).values() if isinstance(s, Mapping)]
    on_pool = [s for s in specs if s.get('input') == 'pool']
    on_feature = [s for s in specs if isinstance(s.get('input'), str) and 'logit' not in s['input']]
    for spec in on_pool + on_feature:
        return {k: spec[k] for k in ('input', 'parts', 'modalities') if k in spec}
    return dict(input='pool')


def _inherited_configs(
    name: str,
    title: str,
    loss: str,
    base: str,
    bases: Mapping[tuple[str, str], Path],
    loaded: Mapping[tuple[str, str], dict],
) -> dict[str, str]:
    configs = {}
    for (kind, ds), path in sorted(bases.items(), key=lambda kv: (DATASETS.index(kv[0][1]), kv[0])):
        term = dict(type=loss, **_feature_loss(loaded[kind, ds].get('model', {}).get('losses')))
        term.update(weight=1.0, margin=0.3)
        stem = f'{name}_{ds}' if kind == 'full' else f'{name}_demo_{ds}'
        what = f'CPU demo of {title}' if kind == 'demo' else title
        configs[f'{stem}.py'] = (
            f'# {what} on {DATASET_TITLES[ds]}: the recipe of {base}/{path.stem} (method_base),\n'
            f"# with this package's {loss} (losses.py) added to its losses. Set here what\n"
            f'# differs from {base}; _delete_=True replaces a dict instead of merging into it.\n'
            f"method_base = '{base}/{path.stem}'\n"
            f'protocol_base = {ds!r}\n'
            + _entry(name, title, kind)
            + _assignments({'model': dict(losses={name: term})})
        )
    return configs


def _pyproject(name: str, package: str, title: str) -> str:
    return f"""[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "vireid-{name.replace('_', '-')}"
version = "0.1.0"
description = "{title}: a vireid-bench method plugin"
requires-python = ">=3.10"
# vireid-bench is installed from its clone (pip install -e /path/to/vireid-bench) first.
dependencies = ["vireid-bench"]

# How vireid-bench finds the method: an entry point naming its MethodSpec.
[project.entry-points."vireid.methods"]
{name} = "{package}:METHOD"

[tool.setuptools.packages.find]
include = ["{package}*"]

[tool.setuptools.package-data]
{package} = ["configs/*.py"]
"""


def _init(name: str, package: str, title: str, loss: str, base: str) -> str:
    converter = f'{package}.convert:convert'
    released = f'{package}.released:RELEASED'
    return f'''"""{title}: a vireid-bench method plugin.

Started with `vireid new-method {name} --from {base}`. Importing the package registers its
parts in the harness registries; METHOD tells the harness about the method (vireid-bench's
docs/adding-a-method.md explains every field).
"""

from pathlib import Path

from harness.plugins import MethodSpec
from {package} import losses  # noqa: F401  (registers {loss})

METHOD = MethodSpec(
    name={name!r},  # id on the command line, in run directories, records and entry.method
    title={title!r},  # the method's name in tables
    configs=Path(__file__).parent / 'configs',  # every *.py here is a config of the method
    paper='',  # citation: authors, title, venue, year
    code='',  # official repository and the commit read: 'owner/repo@<40-hex commit>'
    # Names the method's rows carry in results/reported.csv (besides name and title): which
    # reported numbers the tables put beside this method's runs.
    aliases=(),
    # 'package.module:function' converting an official checkpoint, f(src, dst, trusted=False),
    # e.g. {converter!r}; used by `vireid convert {name}`.
    converter=None,
    # 'package.module:NAME', a tuple of harness.official.ReleasedCheckpoint: the authors' released
    # weights, re-scored by `vireid leaderboard --official`; e.g. {released!r}.
    released=None,
)
'''


def _losses(loss: str) -> str:
    return f'''"""The loss this method adds, registered as {loss}: the place to start editing.

As written it is a batch-hard triplet loss (Hermans et al., "In Defense of the Triplet Loss for
Person Re-Identification", 2017): for each row the farthest row of its identity and the closest
row of another identity, then mean(relu(d_ap - d_an + margin)). The configs hand it the input
they name (``input='pool'``: the pooled features, one row per image, ``[N, D]``) and the
identity labels; a loss that sets ``takes_modality = True`` also gets the rows' modality codes
(0 visible, 1 infrared) as ``modality=``. It returns the loss, or ``(loss, n_correct)``: the rows
it ranks correctly are logged as ``acc_<name>``. The config's ``weight`` multiplies it.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from harness.models.losses import euclidean_dist
from harness.registry import MODELS


@MODELS.register_module()
class {loss}(nn.Module):
    def __init__(self, margin: float = 0.3) -> None:
        super().__init__()
        self.margin = float(margin)

    def forward(self, feats: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        same = labels.unsqueeze(0) == labels.unsqueeze(1)
        dist = euclidean_dist(feats, feats)
        d_ap = dist.masked_fill(~same, float('-inf')).amax(dim=1)
        d_an = dist.masked_fill(same, float('inf')).amin(dim=1)
        loss = F.relu(d_ap - d_an + self.margin).mean()
        return loss, (d_an >= d_ap).sum().detach()

    def extra_repr(self) -> str:
        return f'margin={{self.margin}}'
'''


def _learning_test(name: str, package: str) -> str:
    return f'''"""The demo learns: trained minus untrained mAP on a synthetic RegDB; a broken twin.

The RegDB demo config trains through the harness engine on the demo's synthetic RegDB (120
identities, split 1: 60 train, 60 test; chance Rank-1 1.7 %) and the same network is scored
untrained (its initial weights). The learning margin is the trained minus the untrained mAP, the
mean of both directions. The twin trains with the identity labels shuffled (a data bug) and must
miss the margin. MARGIN = 15 is what vireid-bench asks of its own demos (their margins measured
22.8 to 49.5, shuffled -6.5 to 2.2); measure yours over a few seeds and thread counts and keep the
margin far outside that spread. Run: pytest tests (a minute or two on one CPU core).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import {package}
from harness.data import datasets as harness_datasets
from harness.engine.run import run_experiment, score_run
from protocols.datasets.synthetic import generate

DEMO = Path({package}.__file__).parent / 'configs' / '{name}_demo_regdb.py'
MARGIN = 15.0


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def regdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(generate('regdb', tmp_path_factory.mktemp('data') / 'RegDB', seed=0))


def margin(data_root: Path, work_dir: Path) -> float:
    kwargs = dict(data_root=str(data_root), log_level='WARNING')
    before = score_run(str(DEMO), str(work_dir / 'untrained'), **kwargs)
    after = run_experiment(str(DEMO), str(work_dir / 'run'), **kwargs)
    assert before['status'] == after['status'] == 'done' and after['method'] == {name!r}

    def mean_map(record: dict) -> float:
        return float(np.mean([record['results'][d]['mean']['mAP'] for d in ('v2t', 't2v')]))

    return mean_map(after) - mean_map(before)


def test_the_demo_learns(regdb: Path, tmp_path: Path) -> None:
    assert margin(regdb, tmp_path) >= MARGIN


def test_shuffled_labels_miss_the_margin(
    regdb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    init = harness_datasets.VIReIDTrainSet.__init__

    def shuffled(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.labels = np.random.default_rng(0).permutation(self.labels)

    monkeypatch.setattr(harness_datasets.VIReIDTrainSet, '__init__', shuffled)
    assert margin(regdb, tmp_path) < MARGIN
'''


def _readme(name: str, package: str, title: str, loss: str, base: str, configs: list[str]) -> str:
    listed = '\n'.join(f'- `{package}/configs/{c}`' for c in configs)
    return f"""# {title}

A method plugin for vireid-bench, started with `vireid new-method {name} --from {base}`.
Replace each section's placeholder with the facts; vireid-bench's own method READMEs
(`methods/*/README.md`) show each section filled in.

## Paper and official code

- Paper: authors, title, venue, year (and the table each reported number comes from).
- Official code read: repository URL @ the full commit, and the files read.

## What the plugin implements

One row per part: what it is here (registered part or module, config key) and the official
source (file and function or line) it reproduces.

## Losses

The config's `model.losses`: each loss, its input, weight and official counterpart.
`{loss}` (`{package}/losses.py`) is the one this package adds.

## Deviations from the official code, and why

Every place the plugin differs from the official code (data loading, sampler, randomness,
evaluation, model selection), and why.

## Configs

{listed}

The full configs are the published recipe; the demo configs keep the architecture and losses at
toy size so that `vireid leaderboard --demo` trains them on a CPU.

## Checkpoints

The converter (`vireid convert {name}`, `MethodSpec.converter`) and its key map, the released
checkpoints (`MethodSpec.released`), and the feature-parity check against the official model.

## Parameter counts

Measured on the harness model and on the official model.

## Reported numbers

The rows added to vireid-bench's `results/reported.csv`, each naming where it was printed;
`MethodSpec.aliases` holds the name those rows carry.

## Demo figures

What `vireid leaderboard --demo` measured (trained and untrained rows), and the learning margin
of `tests/test_learning.py`.

## Commands

```bash
pip install -e .                 # in this folder, into the environment that has vireid-bench
vireid methods                   # lists {name}
vireid train {name}_demo_regdb --data-root data/RegDB
vireid leaderboard --methods {name} --demo
pytest tests                     # the demo learns; the shuffled-label twin does not
```
"""
