"""Where a number came from: code version, packages, seed, device, data, time."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

PACKAGES = (
    'vireid-bench',
    'torch',
    'torchvision',
    'mmengine',
    'mmcv-lite',
    'numpy',
    'scipy',
    'pandas',
)
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def git_state(root: Path = SOURCE_ROOT) -> dict[str, Any]:
    """Commit of the harness checkout and whether it has uncommitted changes."""
    try:
        commit = subprocess.run(
            ['git', 'rev-parse', 'HEAD'],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ['git', 'status', '--porcelain', '--untracked-files=no'],
                cwd=root,
                capture_output=True,
                text=True,
                check=True,
                timeout=10,
            ).stdout.strip()
        )
    except (OSError, subprocess.SubprocessError):
        return dict(git_commit='unknown (not a git checkout)', dirty=None)
    return dict(git_commit=f'{commit}-dirty' if dirty else commit, dirty=dirty)


def versions() -> dict[str, str]:
    out = {'python': platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = 'not installed'
    return out


def device() -> str:
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        return f'cuda: {n} x {torch.cuda.get_device_name(0)}'
    return f'cpu ({torch.get_num_threads()} threads)'


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec='seconds')


def collect(seed: int, dataset_fingerprint: str, plugin: str = '') -> dict[str, Any]:
    return dict(
        **git_state(),
        versions=versions(),
        plugin=plugin,
        seed=seed,
        device=device(),
        dataset_fingerprint=dataset_fingerprint,
        host=socket.gethostname(),
        job_id=os.environ.get('SLURM_JOB_ID'),
        started=now(),
    )
