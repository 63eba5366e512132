"""Reading and writing checkpoints: the one place the project calls ``torch.load`` on them.

Train resume, ``vireid test``, :func:`harness.api.load_model`, the converters and the leaderboard
all read through :func:`read_checkpoint`, which

- passes ``weights_only`` to ``torch.load`` explicitly (``True`` unless the caller says the file is
  trusted), so ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` in the environment cannot make it unpickle
  code: torch only applies that variable when the caller left ``weights_only`` unset;
- turns every way a file can be unreadable (missing, empty, truncated, not a checkpoint, holding
  pickled objects) into a :class:`~harness.errors.CheckpointError` naming the file and the fix.

Weights go into a model only through :func:`load_weights`, which is strict: a missing, unexpected
or mis-shaped key is an error naming the first few of them and the likely cause, never a warning
followed by a partly random model. Checkpoints written by the harness describe themselves
(``meta``: method, config, config hash, number of classes; see :func:`describe_model`) and are
written atomically (:func:`save_checkpoint`), so a crash or a full disk leaves the previous file.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from harness.errors import CheckpointError
from protocols.datasets import TRAIN_CLASSES

FORMAT = 1  # meta['format'] of the checkpoints this module writes
SHOWN = 5  # keys named per kind of mismatch
_STAGE_KEY = re.compile(r'(?:^|\.)layer([1-4])\.(\d+)\.')


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint path does not exist."""


class UnsafeCheckpointError(CheckpointError):
    """The file holds pickled Python objects besides tensors; loading it could run code."""


class DamagedCheckpointError(CheckpointError):
    """The file is empty, cut short or not a checkpoint at all (a crash or a full disk while
    something other than :func:`save_checkpoint` wrote it, or a damaged disk); ``reason`` says
    which, in a few words."""

    def __init__(self, message: str, reason: str = '') -> None:
        super().__init__(message)
        self.reason = reason or message


class CheckpointMismatchError(CheckpointError):
    """The checkpoint's tensors do not fit the model (missing, unexpected or mis-shaped keys)."""


@dataclass
class Checkpoint:
    """A checkpoint file's content: the model weights, what the file says about them, the rest."""

    path: Path
    state_dict: dict[str, Tensor]
    meta: dict[str, Any] = field(default_factory=dict)
    raw: Any = None  # the whole object (optimizer and message-hub state of a resumable one)


def read_checkpoint(
    path: str | os.PathLike,
    trusted: bool = False,
    map_location: Any = 'cpu',
    untrusted_hint: str = '',
) -> Any:
    """The object ``torch.save`` wrote to ``path``, read with ``weights_only=not trusted``.

    ``untrusted_hint`` is added to the refusal of a file that holds pickled objects (how to convert
    or trust it in the caller's command).
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointNotFoundError(f'checkpoint {path} does not exist; check the path')
    if path.is_dir():
        raise CheckpointError(
            f'checkpoint {path} is a folder; give the .pth file inside it '
            '(e.g. the one named in its last_checkpoint file)'
        )
    if path.stat().st_size == 0:
        raise DamagedCheckpointError(
            f'checkpoint {path} is empty (0 bytes): it was not written '
            'completely (a crash or a full disk while saving); use an earlier '
            'checkpoint',
            'empty: 0 bytes',
        )
    try:
        # weights_only is always given: torch then ignores TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD.
        return torch.load(path, map_location=map_location, weights_only=not trusted)
    except OSError as err:
        if err.filename is not None:
            raise  # the file system's own error: the command line names the path and the fix
        # torch's zip reader says only "Invalid argument" of an archive cut short.
        raise DamagedCheckpointError(
            f'{path} is damaged ({err.strerror or err}): it may have been cut short by a crash or '
            'a full disk while saving; use an earlier checkpoint',
            f'cut short: {err.strerror or err}',
        ) from None
    except Exception as err:  # pickle, zip and unpickler errors of every kind
        text = str(err)
        found = re.search(r'GLOBAL ([\w.]+)', text)
        if isinstance(err, pickle.UnpicklingError) and found:
            raise UnsafeCheckpointError(
                f'{path} holds pickled Python objects besides tensors (it would call '
                f'{found.group(1).rstrip(".")}), so it was not loaded: '
                'unpickling an untrusted file can run arbitrary code. '
                + (
                    untrusted_hint
                    or 'An official checkpoint is converted first (`vireid convert '
                    'METHOD SRC DST`); a file from a source you trust loads with --trusted '
                    '(Python: trusted=True).'
                )
            ) from None
        if not _is_zip(path):
            raise DamagedCheckpointError(
                f'{path} is not a PyTorch checkpoint (not a file written by '
                'torch.save, or a damaged one); check the path',
                'not a file torch.save wrote',
            ) from None
        raise DamagedCheckpointError(
            f'{path} is damaged or not a PyTorch checkpoint ({type(err).__name__}: '
            f'{_first_line(text)}); it may have been cut short by a crash or a full disk while '
            'saving: use an earlier checkpoint',
            f'{type(err).__name__}: {_first_line(text)}',
        ) from None


def load_checkpoint(
    path: str | os.PathLike,
    trusted: bool = False,
    map_location: Any = 'cpu',
    untrusted_hint: str = '',
) -> Checkpoint:
    """A harness checkpoint (``{'state_dict', 'meta', ...}``) or a plain state dict of tensors."""
    path = Path(path)
    obj = read_checkpoint(path, trusted, map_location, untrusted_hint)
    if isinstance(obj, Mapping) and isinstance(obj.get('state_dict'), Mapping):
        state, meta = obj['state_dict'], obj.get('meta')
    elif isinstance(obj, Mapping) and obj and all(isinstance(v, Tensor) for v in obj.values()):
        state, meta = obj, None
    else:
        raise CheckpointError(
            f'{path} holds {_kind(obj)}: neither a harness checkpoint nor a state dict of tensors '
            '(a harness checkpoint is {"state_dict": ..., "meta": ...}); official checkpoints are '
            'read with `vireid convert METHOD SRC DST` first'
        )
    bad = [k for k, v in state.items() if not isinstance(v, Tensor)][:SHOWN]
    if bad:
        raise CheckpointError(
            f'{path}: the state dict has non-tensor entries {bad}; it is not a model state dict'
        )
    # DataParallel / DistributedDataParallel wrappers prefix every key with 'module.'.
    state = {k.removeprefix('module.'): v for k, v in state.items()}
    return Checkpoint(path, state, dict(meta) if isinstance(meta, Mapping) else {}, obj)


def describe_model(
    method: str | None,
    num_classes: int | None,
    config: str | None = None,
    config_hash: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The ``meta`` a harness checkpoint carries, so that it loads without its training data:
    ``method``, ``num_classes`` (training identities = classifier rows), ``config_name`` (the
    config file's name) and ``config_hash`` (:func:`harness.engine.config.config_hash`).

    (Not ``config``: mmengine's resume parses ``meta['config']`` as config text.)
    """
    meta = dict(
        format=FORMAT,
        method=method,
        num_classes=None if num_classes is None else int(num_classes),
        config_name=config,
        config_hash=config_hash,
    )
    meta.update(extra)
    return meta


def load_weights(
    model: nn.Module, checkpoint: Checkpoint, method: str | None = None, config: str | None = None
) -> None:
    """Copy ``checkpoint``'s weights into ``model``, strictly (see :func:`check_fit`)."""
    check_fit(model, checkpoint, method, config)
    model.load_state_dict(checkpoint.state_dict, strict=True)


def check_fit(
    model: nn.Module, checkpoint: Checkpoint, method: str | None = None, config: str | None = None
) -> None:
    """Raise :class:`CheckpointMismatchError` unless the checkpoint has exactly the model's keys and
    shapes. ``method`` and ``config`` (the model's) sharpen the likely cause in the message."""
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in checkpoint.state_dict.items()}
    missing = [k for k in want if k not in have]
    unexpected = [k for k in have if k not in want]
    shapes = [k for k in want if k in have and want[k] != have[k]]
    if not (missing or unexpected or shapes):
        return
    target = f'the model of {config}' if config else 'the model'
    lines = [f'checkpoint {checkpoint.path} does not fit {target}:']
    for title, keys in (
        ('missing from the checkpoint', missing),
        ('unexpected in the checkpoint', unexpected),
    ):
        if keys:
            lines.append(
                f'  {title} ({len(keys)}): {", ".join(keys[:SHOWN])}'
                + (', ...' if len(keys) > SHOWN else '')
            )
    if shapes:
        shown = '; '.join(f'{k}: checkpoint {have[k]}, model {want[k]}' for k in shapes[:SHOWN])
        lines.append(
            f'  different shape ({len(shapes)}): {shown}' + ('; ...' if len(shapes) > SHOWN else '')
        )
    cause = _likely_cause(want, have, missing, unexpected, shapes, checkpoint.meta, method)
    lines.append(f'likely cause: {cause}')
    raise CheckpointMismatchError('\n'.join(lines))


def _likely_cause(
    want: dict,
    have: dict,
    missing: list,
    unexpected: list,
    shapes: list,
    meta: dict,
    method: str | None,
) -> str:
    written = _written_by(meta)
    if method and meta.get('method') and meta['method'] != method:
        return (
            f'the checkpoint is of method {meta["method"]!r}, the config of {method!r}; '
            f'test it with a config of method {meta["method"]!r}{written}'
        )
    ours, theirs = _stage_blocks(want), _stage_blocks(have)
    if ours and theirs and ours != theirs:
        return (
            f"the checkpoint's ResNet has {_blocks(theirs)} blocks per stage, the model "
            f'{_blocks(ours)}: a full-size checkpoint with a demo config, or the reverse; '
            f'use the config it was trained with{written}'
        )
    if (
        shapes
        and not missing
        and not unexpected
        and all(want[k][1:] == have[k][1:] and want[k][:1] != have[k][:1] for k in shapes)
        and any('classifier' in k for k in shapes)
    ):
        n_have = have[shapes[0]][0]
        n_want = want[shapes[0]][0]
        counts = ', '.join(f'{name} {n}' for name, n in TRAIN_CLASSES.items())
        return (
            f'the checkpoint classifies {n_have} identities, the model {n_want}: it was '
            f'trained on another dataset (training identities: {counts}) or another data '
            f'root; test it with a config and data of its dataset{written}'
        )
    foreign = sorted({k.split('.')[0] for k in unexpected} - {k.split('.')[0] for k in want})
    if foreign:
        modules = ', '.join(foreign[:SHOWN])
        return (
            f'the checkpoint holds modules this model does not have ({modules}): it is a '
            f'checkpoint of another method or architecture; use its own config{written}'
        )
    return (
        'the checkpoint was written for another model or config; use the config it was '
        f'trained with{written}'
    )


def _written_by(meta: dict) -> str:
    names = (('method', 'method'), ('config_name', 'config'))
    parts = [f'{name} {meta[key]}' for key, name in names if meta.get(key)]
    return f' (the checkpoint says: {", ".join(parts)})' if parts else ''


def _stage_blocks(shapes: Mapping[str, Any]) -> tuple[int, ...]:
    """Blocks per ResNet stage (layer1..layer4) as seen in state-dict keys; () if none."""
    counts: Counter = Counter()
    for key in shapes:
        for m in _STAGE_KEY.finditer(key):
            stage, block = int(m.group(1)), int(m.group(2))
            counts[stage] = max(counts[stage], block + 1)
    return tuple(counts.get(s, 0) for s in range(1, 5)) if counts else ()


def _blocks(blocks: tuple[int, ...]) -> str:
    return '/'.join(map(str, blocks))


def save_checkpoint(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to a temporary file beside ``path``, then renamed onto it: readers (and a
    resume after a crash or a full disk) see the previous complete file or the new one, never a
    partial one. The temporary file is removed when writing fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        with os.fdopen(fd, 'wb') as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise
    return path


def replace_atomically(write: Any, path: str | os.PathLike) -> Path:
    """Call ``write(tmp_path)`` (which writes a complete file there), then rename it onto ``path``.
    For writers that insist on opening the file themselves (mmengine's checkpoint saver)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, 'rb') as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise
    return path


def latest_checkpoint(work_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint of a run folder, or ``None``.

    ``last_checkpoint`` (written by mmengine's CheckpointHook) names it; when that file is missing,
    empty or names a file that is gone, the highest ``epoch_<n>.pth`` is taken instead.
    """
    work_dir = Path(work_dir)
    pointer = work_dir / 'last_checkpoint'
    try:
        named = pointer.read_text(encoding='utf-8').strip()
    except (FileNotFoundError, UnicodeDecodeError):
        named = ''
    if named:
        candidate = Path(named)
        candidate = candidate if candidate.is_absolute() else work_dir / candidate
        if candidate.is_file() and candidate.stat().st_size > 0:
            return candidate
        local = work_dir / candidate.name  # the run folder was moved since
        if local.is_file() and local.stat().st_size > 0:
            return local
    epochs = []
    for p in work_dir.glob('epoch_*.pth'):
        number = p.stem.removeprefix('epoch_')
        if number.isdigit() and p.stat().st_size > 0:
            epochs.append((int(number), p))
    return max(epochs)[1] if epochs else None


@dataclass
class ResumePoint:
    """Where a run continues: its newest checkpoint that reads (``None``: from the start), and the
    newer ones found damaged, each ``(file, where it was moved, why)``."""

    checkpoint: Checkpoint | None
    damaged: list[tuple[Path, Path, str]] = field(default_factory=list)

    def note(self) -> str | None:
        """What a person resuming must be told, or None when nothing was damaged."""
        if not self.damaged:
            return None
        then = (
            f'resuming from the previous checkpoint {self.checkpoint.path}'
            if self.checkpoint is not None
            else 'no earlier checkpoint reads, so the run starts from its first epoch'
        )
        found = '; '.join(
            f'{f} is damaged ({why}), kept as {aside}' for f, aside, why in self.damaged
        )
        return f'{found}; {then}'


def resume_point(work_dir: str | os.PathLike, trusted: bool = False) -> ResumePoint:
    """The newest checkpoint of ``work_dir`` that reads (see :func:`latest_checkpoint`).

    A damaged one (empty, cut short, not a checkpoint) is moved aside as ``<name>.damaged`` (kept
    for a person to look at, and out of every later resume's way) and the one before it is tried,
    so a retry does not fail on the same file again and again.
    """
    work_dir = Path(work_dir)
    point = ResumePoint(None)
    while (path := latest_checkpoint(work_dir)) is not None:
        try:
            point.checkpoint = load_checkpoint(path, trusted=trusted)
            return point
        except DamagedCheckpointError as err:
            aside = path.with_name(path.name + '.damaged')
            n = 1
            while aside.exists():
                n += 1
                aside = path.with_name(f'{path.name}.damaged{n}')
            os.replace(path, aside)
            point.damaged.append((path, aside, err.reason))
    return point


def _unlink(path: str | os.PathLike) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _is_zip(path: Path) -> bool:
    """Whether ``path`` starts like the zip archive torch.save writes (even when cut short)."""
    try:
        with open(path, 'rb') as fh:
            return fh.read(4) == b'PK\x03\x04'
    except OSError:
        return False


def _first_line(text: str) -> str:
    """The first sentence of an error text (torch appends paragraphs of advice)."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), text)
    return line.split('. ')[0].rstrip('.')[:300]


def _kind(obj: Any) -> str:
    if isinstance(obj, Mapping):
        return f'a dict with keys {list(obj)[:SHOWN]}' if obj else 'an empty dict'
    return f'a {type(obj).__name__}'
