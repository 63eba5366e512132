"""Device check (not a pytest module): full-size AGW training steps on CUDA, fp32 and fp16 autocast.

Run from the repository root: ``python tests/methods/agw/gpu_check.py``. Prints time per iteration and
peak memory for the official batch (8 ids x (4 VIS + 4 IR), 288x144), and checks the losses are finite.
"""
import time

import torch

from methods.agw.model import AGW


def main() -> None:
    dev = 'cuda'
    torch.manual_seed(0)
    model = AGW(num_classes=395, backbone=dict(pretrained=False)).to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    labels = torch.arange(8).repeat_interleave(4)
    samples = dict(label=torch.cat([labels, labels]).to(dev),
                   modality=torch.tensor([0] * 32 + [1] * 32, device=dev))
    x = torch.randn(64, 3, 288, 144, device=dev)
    ms = {}
    for amp in (False, True):
        torch.cuda.reset_peak_memory_stats()
        times = []
        for it in range(8):
            torch.cuda.synchronize()
            t = time.time()
            with torch.autocast('cuda', dtype=torch.float16, enabled=amp):
                out = model.loss(x, samples)
            loss = out['loss_id'] + out['loss_tri']
            opt.zero_grad()
            loss.backward()
            opt.step()
            torch.cuda.synchronize()
            times.append(time.time() - t)
            assert torch.isfinite(loss), out
        ms[amp] = sum(times[3:]) / 5
        print(f'amp={amp}: {ms[amp] * 1000:.1f} ms/iter, peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB, '
              f'loss_id {out["loss_id"].item():.3f} loss_tri {out["loss_tri"].item():.3f}')
    model.eval()
    with torch.no_grad():
        f = model.extract_feat(x[:16], 1)
    print('feat', tuple(f.shape), 'norms', f.norm(dim=1).min().item(), f.norm(dim=1).max().item())
    print('iters/epoch SYSU', 22258 // 32 + 1, '-> est. min/epoch fp32', round((22258 // 32 + 1) * ms[False] / 60, 1),
          'fp16', round((22258 // 32 + 1) * ms[True] / 60, 1))


if __name__ == '__main__':
    main()
