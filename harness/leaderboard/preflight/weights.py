"""The ImageNet weights the planned configs load: in the torch cache, or downloadable from here.

The trunks load torchvision's files through the torch cache, ``$TORCH_HOME/hub/checkpoints``
(:func:`harness.models.backbones.resnet.imagenet_file`), and download them there when they are
missing; a config may also name a local file (``model.backbone.pretrained='/path/file.pth'``).
Offline clusters are the common case: there the preflight names the file and the folder to put
it in.
"""

from __future__ import annotations

import urllib.request
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from harness.leaderboard.preflight.findings import Finding


def url_reachable(url: str, timeout: float = 5.0) -> bool:
    """Whether this machine can download ``url`` (a HEAD request answers). Tests replace it: the
    preflight's tests never touch the network."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method='HEAD'), timeout=timeout):
            return True
    except Exception:  # offline, DNS, proxy, HTTP error: not downloadable from here
        return False


def _readable(path: Path) -> str | None:
    """Why ``path`` is not a usable weights file (None when it looks like one: torch.save
    writes a zip archive)."""
    if not path.is_file():
        return 'does not exist'
    if path.stat().st_size == 0:
        return 'is empty'
    if not zipfile.is_zipfile(path):
        return 'is not a PyTorch weights file (a cut-short download?)'
    return None


def check_weights(
    loads: Mapping[tuple[int, str | None], Sequence[str]],
    reachable: Callable[[str], bool] | None = None,
) -> list[tuple[Finding, tuple[str, ...]]]:
    """(finding, configs it concerns) for the ImageNet loads ``{(depth, file): [config, ...]}``
    (file None: torchvision's weights through the torch cache)."""
    from harness.models.backbones.resnet import imagenet_file

    reachable = reachable or url_reachable
    out = []
    for (depth, given), configs in sorted(loads.items(), key=lambda kv: (kv[0][0], kv[0][1] or '')):
        configs = tuple(sorted(set(configs)))
        which = ', '.join(configs)
        if given is not None:
            why = _readable(Path(given))
            if why:
                message = (
                    f'ImageNet ResNet-{depth} weights file {given} (model ... pretrained of '
                    f'{which}) {why}; give an existing torchvision ResNet-{depth} state dict, '
                    'or pretrained=True for the torch cache'
                )
                out.append((Finding('weights', message), configs))
            continue
        url, file = imagenet_file(depth)
        why = _readable(file)
        if why is None:
            continue
        if why != 'does not exist':
            message = (
                f'{file} (ImageNet ResNet-{depth} weights, for {which}) {why}; delete it and '
                f'download {url} again into {file.parent}'
            )
            out.append((Finding('weights', message), configs))
        elif reachable(url):
            message = (
                f'ImageNet ResNet-{depth} weights {file.name} (for {which}) are not in the torch '
                f'cache {file.parent}; the first run downloads them from {url}: on a cluster '
                'whose nodes are offline, download them now into that folder'
            )
            out.append((Finding('weights', message, level='warning'), configs))
        else:
            message = (
                f'ImageNet ResNet-{depth} weights {file.name} (for {which}) are not in the torch '
                f'cache {file.parent} and {url} cannot be reached from here; download it on a '
                f'machine with internet and copy it into {file.parent} (or set TORCH_HOME to a '
                "folder whose hub/checkpoints holds it), or set model.backbone.pretrained='/path/"
                f"to/{file.name}'"
            )
            out.append((Finding('weights', message), configs))
    return out
