"""Full-size check of TwoStreamMHSA on a GPU (not collected by pytest; run by hand).

AMP training steps with the config's optimiser on one repeated batch (the loss must fall), time
per iteration, peak memory, test-feature extraction speed, and MHSA fp16-vs-fp32 agreement.
``python tests/methods/two_stream_mhsa/gpu_check.py [--small]`` (``--small``: CPU-sized smoke run).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from methods.two_stream_mhsa.mhsa import RelPosMHSA  # noqa: E402
from methods.two_stream_mhsa.model import TwoStreamMHSA  # noqa: E402

SMALL = '--small' in sys.argv
DEV = 'cuda' if torch.cuda.is_available() else 'cpu'
CFG = Config.fromfile(str(Path(__file__).resolve().parents[3] / 'methods/two_stream_mhsa/configs/tsmhsa_sysu.py'))
SIZE = (96, 48) if SMALL else (288, 144)
ITERS, WARM = (3, 1) if SMALL else (25, 5)


def batch(p: int, k: int, classes: int = 395) -> dict:
    ids = torch.randperm(classes)[:p].repeat_interleave(k)
    return dict(inputs=torch.randint(0, 256, (2 * p * k, 3, *SIZE), dtype=torch.uint8),
                data_samples=dict(label=torch.cat([ids, ids]), modality=torch.tensor([0] * (p * k) + [1] * (p * k))))


def sync() -> None:
    if DEV == 'cuda':
        torch.cuda.synchronize()


def run(name: str, over: dict, p: int, k: int) -> dict:
    model_cfg = {key: v for key, v in CFG.model.to_dict().items() if key != 'type'}
    model_cfg.update(over, input_size=SIZE)
    model_cfg['backbone'] = dict(model_cfg['backbone'], pretrained=False,
                                 **(dict(blocks=(1, 1, 1, 1)) if SMALL else {}))
    torch.manual_seed(0)
    model = TwoStreamMHSA(395, **model_cfg).to(DEV).train()
    wrapper_cfg = CFG.optim_wrapper.to_dict()
    if DEV == 'cuda':
        wrapper_cfg.update(type='AmpOptimWrapper', dtype='float16')
    wrapper = build_optim_wrapper(model, wrapper_cfg)
    data_in = batch(p, k)
    if DEV == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    losses = []
    for it in range(ITERS):
        if it == WARM:
            sync()
            start = time.time()
        data = model.data_preprocessor(data_in, training=True)
        with wrapper.optim_context(model):
            out = model(**data, mode='loss')
        wrapper.update_params(sum(v for key, v in out.items() if key.startswith('loss')))
        losses.append({key: round(float(v), 4) for key, v in out.items()})
    sync()
    step = (time.time() - start) / (ITERS - WARM)
    model.eval()
    images = model.data_preprocessor(dict(inputs=data_in['inputs'][:64], data_samples=None))['inputs']
    with torch.no_grad(), torch.autocast(DEV, dtype=torch.float16, enabled=DEV == 'cuda'):
        feat = model.extract_feat(images, 1)
        sync()
        t0 = time.time()
        for _ in range(5):
            feat = model.extract_feat(images, 1)
        sync()
    bad: list[str] = []

    def hook(mod, _inp, out, _name=None):
        if isinstance(out, torch.Tensor) and not torch.isfinite(out).all() and len(bad) < 3:
            bad.append(f'{mod._check_name} max|x|={out.float().abs().nan_to_num(posinf=1e30).max():.3g}')

    handles = []
    for mod_name, mod in model.named_modules():
        mod._check_name = mod_name
        handles.append(mod.register_forward_hook(hook))
    with torch.no_grad():
        with torch.autocast(DEV, dtype=torch.float16, enabled=DEV == 'cuda'):
            model.extract_feat(images, 1)
        first_bad_fp16 = list(bad)
        bad.clear()
        feat32 = model.extract_feat(images, 1)
    for h in handles:
        h.remove()
    return dict(name=name, batch=2 * p * k, s_per_iter=round(step, 4),
                first_nonfinite_fp16=first_bad_fp16, first_nonfinite_fp32=list(bad),
                feat32_finite=bool(torch.isfinite(feat32).all()),
                peak_mem_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2) if DEV == 'cuda' else None,
                params=sum(q.numel() for q in model.parameters()), first=losses[0], last=losses[-1],
                all_finite=all(all(v == v and abs(v) != float('inf') for v in l.values()) for l in losses),
                extract_s_per_64=round((time.time() - t0) / 5, 4), feat_shape=list(feat.shape),
                feat_finite=bool(torch.isfinite(feat).all()))


def main() -> None:
    report: dict = dict(device=torch.cuda.get_device_name() if DEV == 'cuda' else 'cpu', torch=torch.__version__)
    fh, fw = SIZE[0] // 16, SIZE[1] // 16
    mhsa = RelPosMHSA(512, (fh, fw)).to(DEV)
    x = torch.randn(8 if SMALL else 96, 512, fh, fw, device=DEV)
    with torch.no_grad():
        ref = mhsa(x)
        with torch.autocast(DEV, dtype=torch.float16, enabled=DEV == 'cuda'):
            half = mhsa(x)
    report['mhsa_fp16_max_abs_err'] = float((half.float() - ref).abs().max())
    report['mhsa_out_abs_max'] = float(ref.abs().max())
    runs = [('full P4xK8', {}, 4, 8), ('B3 (no MHSA, no aux) P4xK8', dict(mhsa_stages=[], aux='none'), 4, 8),
            ('full P8xK4 (hctri recipe batch)', {}, 8, 4)]
    if SMALL:
        runs = [('full P2xK2', {}, 2, 2)]
    report['runs'] = [run(*r) for r in runs]
    if not SMALL:
        iters = 22258 // 32 + 1   # SYSU epoch (spec §6.1)
        report['est_full_train_hours_61_epochs'] = round(report['runs'][0]['s_per_iter'] * iters * 61 / 3600, 2)
    print(json.dumps(report, indent=1))


if __name__ == '__main__':
    main()
