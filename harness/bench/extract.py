"""Feature-extraction throughput: the harness test pipeline against the official repositories' way.

Ours is what a run's test uses (``runner_config``): the decode-once uint8 cache, batches of
``test.batch_size`` images of one modality, pinned host memory and an asynchronous copy to the
device (normalisation happens there), features kept on the device. The reference does what the
official test scripts do: decode and resize every image with PIL, ``ToTensor`` + ``Normalize`` on
the host, a blocking copy, and each batch's features copied back to the host. Both run the same
model on the same batches of images with the same loader workers, in this process, and must give
the same features; the one-time cache build is reported apart.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import torch
from mmengine.config import DictAction
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from harness.data.cache import DEFAULT_RESIZE_FILTER
from harness.data.datasets import cached_images
from harness.engine.config import load_config
from harness.engine.run import build_runner
from harness.models.data_preprocessor import IMAGENET_MEAN, IMAGENET_STD
from harness.models.pretrained import without_pretrained
from harness.outputs import check_output
from harness.plugins import discover, resolve_config
from protocols.datasets import load_dataset
from protocols.evaluation import test_records

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / 'methods/agw/configs/agw_sysu.py'


class PILPerImage(Dataset):
    """The official test sets: each image decoded, resized and normalised on the host, each time."""

    def __init__(
        self, root: str, records, size: tuple[int, int], resize_filter: str = 'bilinear'
    ) -> None:
        self.root, self.records = root, records
        # the config's PIL filter, as the method's official code resizes (e.g. AGW: LANCZOS)
        mode = T.InterpolationMode[resize_filter.upper()]
        self.transform = T.Compose(
            [
                T.Resize(size, interpolation=mode),
                T.ToTensor(),
                T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
            ]
        )

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int):
        with Image.open(Path(self.root) / self.records[i].path) as im:
            return self.transform(im.convert('RGB')), int(self.records[i].modality)


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _time_ours(runner, batches: int) -> tuple[float, list[list[int]], torch.Tensor]:
    """Images/s of the run's own test loader and model step; the timed batches, their features."""
    loop = runner.build_test_loop(runner._test_loop)
    model, device = runner.model, next(runner.model.parameters()).device
    model.eval()
    it = iter(loop.dataloader)
    indices, feats = [], []
    with torch.no_grad():
        model.test_step(next(it))  # warm-up: first batch, worker start-up, cuDNN choices
        _sync(device)
        start = time.perf_counter()
        for _ in range(batches):
            batch = next(it, None)
            if batch is None:
                break
            outputs = model.test_step(batch)
            indices.append([o['index'] for o in outputs])
            feats += [o['feat'] for o in outputs]
        _sync(device)
        elapsed = time.perf_counter() - start
    n = sum(map(len, indices))
    return n / max(elapsed, 1e-9), indices, torch.stack(feats).cpu()


def _time_reference(
    model, dataset: Dataset, batches: list[list[int]], workers: int
) -> tuple[float, torch.Tensor]:
    """Images/s of the official way on the same batches (after a warm-up batch); their features."""
    device = next(model.parameters()).device
    loader = DataLoader(dataset, batch_sampler=[batches[0]] + batches, num_workers=workers)
    it = iter(loader)
    feats = []
    with torch.no_grad():
        images, modality = next(it)
        model.extract_feat(images.to(device), int(modality[0]))
        _sync(device)
        start = time.perf_counter()
        for images, modality in it:
            feats.append(model.extract_feat(images.to(device), int(modality[0])).float().cpu())
        elapsed = time.perf_counter() - start
    n = sum(map(len, batches))
    return n / max(elapsed, 1e-9), torch.cat(feats)


def run(
    config: str | Path = DEFAULT_CONFIG,
    data_root: str | None = None,
    ids: int = 50,
    batches: int = 4,
    options: dict | None = None,
    work_dir: str | None = None,
) -> dict:
    """Images per second of both pipelines on this machine's device (CUDA when present)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            return _run(config, data_root, ids, batches, options, Path(work_dir or tmp), Path(tmp))
        finally:
            _close_logs(Path(tmp))


def _close_logs(folder: Path) -> None:
    """The runner's logger outlives it: stop it writing into a folder about to be deleted."""
    from mmengine.logging import MMLogger

    for logger in list(MMLogger._instance_dict.values()):
        for handler in list(logger.handlers):
            if isinstance(handler, logging.FileHandler) and Path(
                handler.baseFilename
            ).is_relative_to(folder):
                logger.removeHandler(handler)
                handler.close()


def _run(
    config: str | Path,
    data_root: str | None,
    ids: int,
    batches: int,
    options: dict | None,
    work_dir: Path,
    tmp: Path,
) -> dict:
    if data_root is None:
        from protocols.datasets.synthetic import generate

        dataset = load_config(config).protocol['dataset']
        data_root = str(generate(dataset, tmp / dataset, ids=ids))
    cfg = load_config(config, {**(options or {}), 'cache_dir': str(tmp / 'cache')})
    cfg.data_root = data_root
    cfg.model = without_pretrained(cfg.model)  # throughput only: no ImageNet weights needed
    size = tuple(cfg.input_size)
    ds = load_dataset(cfg.protocol['dataset'], data_root)
    records = test_records(ds, None, cfg.protocol)
    start = time.perf_counter()
    resize_filter = cfg.get('resize_filter', DEFAULT_RESIZE_FILTER)
    # the entry the test set reads: every image of the dataset root, decoded once
    cached = cached_images(ds, records, size, cfg.cache_dir, resize_filter)
    cache_s = time.perf_counter() - start
    runner = build_runner(
        cfg, work_dir / 'bench_extract', train=False, resume=False, log_level='WARNING'
    )
    loader = runner._test_dataloader
    ours_ips, timed, ours_feats = _time_ours(runner, batches)
    if not timed:
        raise ValueError(
            f'the test set ({len(records)} images) holds only one batch of '
            f'{loader["batch_size"]}; use a larger dataset (--ids) or a smaller '
            'test.batch_size'
        )
    reference = PILPerImage(data_root, records, size, resize_filter)
    ref_ips, ref_feats = _time_reference(runner.model, reference, timed, loader['num_workers'])
    # Same images, same pixels (both resize with the config's PIL filter): the features must agree.
    diff = float((ours_feats - ref_feats).abs().max() / ref_feats.abs().max().clamp_min(1e-12))
    if diff > 1e-3:
        raise RuntimeError(
            f'the two pipelines give different features (max relative difference '
            f'{diff:.2g}); their preprocessing differs'
        )
    device = next(runner.model.parameters()).device
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'
    result = dict(
        benchmark='extract',
        config=str(config),
        device=str(device),
        device_name=name,
        threads=torch.get_num_threads(),
        test_images=len(records),
        input_size=list(size),
        batch_size=loader['batch_size'],
        workers=loader['num_workers'],
        pin_memory=loader['pin_memory'],
        images_timed=int(ours_feats.shape[0]),
        max_relative_feature_difference=diff,
        cache_build_s=round(cache_s, 2),
        cache_images=len(cached.entry),
        ours_images_per_s=round(ours_ips, 2),
        official_images_per_s=round(ref_ips, 2),
        speedup=round(ours_ips / max(ref_ips, 1e-9), 2),
    )
    print(
        f'feature extraction, {Path(config).stem} at {size[0]}x{size[1]}, batch '
        f'{result["batch_size"]}, {result["workers"]} loader workers, on {name} '
        f'({result["threads"]} threads):\n'
        f'  harness (uint8 cache, pinned, async copy): {ours_ips:8.2f} images/s\n'
        f'  official (PIL per image, blocking copies): {ref_ips:8.2f} images/s\n'
        f'  ratio {result["speedup"]:.2f}x; features agree to {diff:.1e} (relative); one-time '
        f'cache build {cache_s:.1f} s for the {len(cached.entry)} images of the dataset'
    )
    return result


def build_parser(quick: bool = False) -> argparse.ArgumentParser:
    """The options of ``vireid bench extract`` (``vireid bench extract --help`` prints them)."""
    p = argparse.ArgumentParser(
        prog='vireid bench extract',
        description=__doc__,
        epilog='--json OUT (the result as JSON) and --quick (small batches) apply as well.',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        'config',
        nargs='?',
        default=str(DEFAULT_CONFIG),
        help='method config (default: the AGW SYSU-MM01 config)',
    )
    p.add_argument(
        '--data-root', help='dataset root (default: a synthetic dataset generated in a temp folder)'
    )
    p.add_argument(
        '--ids', type=int, default=50, help='identities of the synthetic dataset (default 50)'
    )
    p.add_argument(
        '--batches',
        type=int,
        default=2 if quick else 4,
        help='batches timed per pipeline (default 4)',
    )
    p.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='config overrides, e.g. test.batch_size=128',
    )
    return p


def main(args: argparse.Namespace) -> int:
    """``vireid bench extract [CONFIG] [--data-root DIR] [--batches N] [--json OUT]``."""
    p = build_parser(args.quick)
    a = p.parse_args(args.options)
    if a.ids < 1 or a.batches < 1:
        p.error(f'--ids and --batches must be at least 1, got {a.ids} and {a.batches}')
    discover()
    a.config = str(resolve_config(a.config))
    if args.json_out:
        check_output(
            '--json', args.json_out, {'config': a.config}, data={'dataset root': a.data_root}
        )
    options = dict(a.cfg_options)
    if args.quick:  # a smoke test: small batches
        options.setdefault('test.batch_size', 16)
    result = run(a.config, a.data_root, a.ids, a.batches, options)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2) + '\n')
    return 0
