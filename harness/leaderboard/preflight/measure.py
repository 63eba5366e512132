"""Measured steps of the preflight: training steps and one test-extraction batch of a config, on the
device the runs will use, and the protocol evaluation on random features of the real test shape.

A config's steps run in a process of their own (``python -m harness.leaderboard.preflight.measure
SPEC``): its peak memory is then the step's (resident set on a CPU, ``max_memory_allocated`` on a
GPU), and a step that runs out of memory fails one measurement, not the preflight. What is
measured, and what is not:

* the model is built by the engine's own recipe (:func:`harness.engine.run.runner_config`:
  optimizer wrapper, AMP on CUDA, channels_last) with **random weights** (timing does not depend
  on them; whether the ImageNet files are there is the weights check);
* the batch is the config's full training batch, laid out by its own sampler (identities and
  modalities), with random pixels at the input size; the data pipeline (decoding is cached,
  augmentation runs in loader workers beside the step) is not timed;
* ``steps`` training steps (forward, losses, backward, optimizer) are timed one by one; the last
  is the figure (the first pays one-time costs: memory pools, kernel selection);
* one test batch (``test.batch_size``) is extracted; its time and the feature length are kept.

On a CPU a watchdog stops the measurement when the process's resident memory would take what the
machine had available when it started (:data:`MEMORY_SHARE` of it): the run would be killed there
too, and a shared machine is not pushed into its out-of-memory killer.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from protocols.datasets.base import Modality

RESULT_PREFIX = 'PREFLIGHT-MEASURE '
MEMORY_SHARE = 0.9  # of the memory available when the measurement starts (CPU)
EXIT_MEMORY = 3  # the watchdog's exit status


def available_memory() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes (None where there is no such file)."""
    try:
        for line in Path('/proc/meminfo').read_text().splitlines():
            if line.startswith('MemAvailable:'):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _resident() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def watch_memory(limit: int, available: int, interval_s: float = 0.02) -> None:
    """Stop this process (exit :data:`EXIT_MEMORY`, one line on stdout) when its resident memory
    passes ``limit`` bytes (``available``: what the machine had, for the message); a daemon
    thread."""
    import threading

    def watch() -> None:
        while True:
            rss = _resident()
            if rss > limit:
                result = dict(
                    error=f'stopped at {rss / 1e9:.1f} GB resident: the step needs more memory '
                    f'than this machine had available ({available / 1e9:.1f} GB); '
                    'runs here would be killed: train on a machine with more memory (or a GPU)'
                )
                print(RESULT_PREFIX + json.dumps(result), flush=True)
                os._exit(EXIT_MEMORY)
            time.sleep(interval_s)

    threading.Thread(target=watch, daemon=True).start()


class _Layout:
    """What a training sampler reads: one label and one modality per image (``ids`` identities,
    ``per_id`` images of each modality each)."""

    def __init__(self, ids: int, per_id: int) -> None:
        self.labels = np.repeat(np.arange(ids), 2 * per_id)
        self.modalities = np.tile(
            np.repeat([int(Modality.VISIBLE), int(Modality.INFRARED)], per_id), ids
        )


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _peak_bytes(device: torch.device) -> tuple[int, str]:
    if device.type == 'cuda':
        return int(torch.cuda.max_memory_allocated(device)), 'GPU allocated'
    # The peak resident set of this process. On Linux, VmHWM of this program's memory: ru_maxrss
    # survives exec, so a measuring process started by a large one (a test session of 1.3 GB)
    # reported its parent's size instead of the step's.
    try:
        with open('/proc/self/status', encoding='ascii') as fh:
            for line in fh:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) * 1024, 'RSS'
    except OSError:
        pass
    # ru_maxrss: kilobytes on Linux, bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == 'darwin' else rss * 1024), 'RSS'


def measure_config(
    config: str,
    cfg_options: dict,
    num_classes: int,
    steps: int = 2,
    device: str | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Time ``steps`` training steps and one test batch of ``config`` in this process (with
    ``threads`` intra-op threads: what each run will have, e.g. a CPU share of parallel runs)."""
    if threads:
        torch.set_num_threads(threads)
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope

    from harness import registry
    from harness.engine.config import load_config
    from harness.engine.run import runner_config
    from harness.models.pretrained import without_pretrained
    from harness.plugins import discover

    discover()
    dev = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    available = available_memory()
    if dev.type == 'cpu' and available and Path('/proc/self/statm').is_file():
        watch_memory(_resident() + int(MEMORY_SHARE * available), available)
    cfg = load_config(config, cfg_options)
    before, _ = _peak_bytes(dev)
    with tempfile.TemporaryDirectory() as nowhere:  # the Runner config names a work dir
        rc = runner_config(cfg, nowhere, num_classes, train=True, resume=False)
    with DefaultScope.overwrite_default_scope(registry.SCOPE):
        model = registry.MODELS.build(without_pretrained(rc['model'])).to(dev)
        if cfg.get('channels_last', False):
            model.to(memory_format=torch.channels_last)
        optim = build_optim_wrapper(model, copy.deepcopy(rc['optim_wrapper']))
        per_id = int(cfg.sampler['num_instances'])
        layout = _Layout(max(num_classes, int(cfg.sampler['num_ids'])), 2 * per_id)
        sampler = registry.DATA_SAMPLERS.build(dict(cfg.sampler, dataset=layout))
    batch_size = int(rc['train_dataloader']['batch_size'])
    index = np.fromiter(itertools.islice(iter(sampler), batch_size), dtype=np.int64)
    h, w = (int(v) for v in cfg.input_size)
    gen = torch.Generator().manual_seed(0)
    batch = dict(
        inputs=torch.randint(0, 256, (len(index), 3, h, w), dtype=torch.uint8, generator=gen),
        data_samples=dict(
            label=torch.from_numpy(layout.labels[index]),
            modality=torch.from_numpy(layout.modalities[index]),
            cam=torch.from_numpy(layout.modalities[index] + 1),
            index=torch.arange(len(index)),
        ),
    )
    if dev.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(dev)
    model.train()
    step_s = []
    for _ in range(steps):
        _sync(dev)
        start = time.perf_counter()
        log_vars = model.train_step(batch, optim)
        _sync(dev)
        step_s.append(time.perf_counter() - start)
    loss = float(torch.as_tensor(log_vars['loss']).detach().float().cpu())
    test_bs = int(cfg.get('test', {}).get('batch_size', 64))
    test_batch = dict(
        inputs=torch.randint(0, 256, (test_bs, 3, h, w), dtype=torch.uint8, generator=gen),
        data_samples=dict(
            label=torch.zeros(test_bs, dtype=torch.int64),
            modality=torch.full((test_bs,), int(Modality.VISIBLE)),
            cam=torch.ones(test_bs, dtype=torch.int64),
            index=torch.arange(test_bs),
        ),
    )
    model.eval()
    _sync(dev)
    start = time.perf_counter()
    with torch.no_grad():
        out = model.test_step(test_batch)
    _sync(dev)
    extract_s = time.perf_counter() - start
    peak, peak_kind = _peak_bytes(dev)
    state = optim.optimizer.state_dict()['state']
    optimizer_bytes = sum(
        t.numel() * t.element_size()
        for s in state.values()
        for t in s.values()
        if isinstance(t, torch.Tensor)
    )
    model_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    return dict(
        device=torch.cuda.get_device_name(dev)
        if dev.type == 'cuda'
        else f'cpu ({torch.get_num_threads()} threads)',
        batch_size=batch_size,
        input_size=[h, w],
        step_s=[round(s, 4) for s in step_s],
        loss=loss,
        loss_finite=bool(np.isfinite(loss)),
        test_batch_size=test_bs,
        extract_s=round(extract_s, 4),
        feature_dim=int(out[0]['feat'].numel()),
        peak_bytes=peak,
        peak_kind=peak_kind,
        # the process's peak before the model was built (on a CPU: the libraries' share of peak)
        before_model_bytes=before if dev.type == 'cpu' else 0,
        checkpoint_bytes=model_bytes + optimizer_bytes,
    )


def measure_in_subprocess(spec: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    """:func:`measure_config` of ``spec`` in a fresh process; ``{'error': ...}`` when it fails."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[3])  # this very tree, installed or not
    env['PYTHONPATH'] = os.pathsep.join([root, *filter(None, [env.get('PYTHONPATH')])])
    cmd = [sys.executable, '-m', 'harness.leaderboard.preflight.measure', json.dumps(spec)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return dict(error=f'did not finish within {timeout:.0f} s')
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    if done.returncode < 0:
        why = f'killed by signal {-done.returncode}' + (
            ' (out of memory?)' if done.returncode == -9 else ''
        )
    else:
        lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
        why = lines[-1] if lines else f'exited with code {done.returncode}'
    return dict(error=why)


def evaluation_seconds(
    dataset: str, root: str, protocol: dict, dim: int, records: list | None = None
) -> float:
    """Seconds of the whole protocol evaluation (every setting and trial) on random features of
    the real test shape: the dataset's test images x ``dim``."""
    from protocols.datasets import load_dataset
    from protocols.evaluation import evaluate, test_records

    ds = load_dataset(dataset, root)
    records = records if records is not None else test_records(ds, None, protocol)
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((len(records), dim), dtype=np.float32)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    if torch.cuda.is_available():
        feats = torch.from_numpy(feats).cuda()  # the engine evaluates where the features are
    start = time.perf_counter()
    evaluate(ds, None, protocol, records, feats)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    spec = json.loads((argv or sys.argv[1:])[0])
    try:
        result = measure_config(**spec)
    except Exception as err:  # reported by the parent as one line
        first = str(err).splitlines()[0] if str(err) else ''
        result = dict(error=f'{type(err).__name__}: {first}')
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
