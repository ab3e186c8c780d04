"""Speed and size of LoGoSeg per backbone config, printed as a table (and optionally written as JSON).

For each config, at its training crop: parameters (total, trainable), latency of a full forward pass
(image encoder + head, N classes, text embeddings cached), the bare CLIP image encoder's latency on the
same input (their ratio is the head's overhead), and peak memory. Then the selective scan of the SS2D
branch at the fusion's size, PyTorch vs mamba-ssm's CUDA kernel when CUDA and the kernel exist.

    python -m logoseg.tools.benchmark configs/logoseg_vitb.py configs/logoseg_vitl.py --device cuda
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import torch

import logoseg  # noqa: F401  (compat fixes, registrations)
from logoseg.models.selective_scan import _load_cuda_kernel, selective_scan


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _time(fn, device: torch.device, repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[len(times) // 2]


def _peak_memory_mb(device: torch.device) -> float:
    """Peak CUDA allocation, or on CPU the peak RSS of this process (each config runs in its own process)."""
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def benchmark_config(path: str, device: torch.device, num_classes: int, repeats: int) -> dict:
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    init_default_scope('mmseg')
    cfg = Config.fromfile(path)
    cfg.model.clip.pretrained = None  # timing does not depend on the weights' values
    model = MODELS.build(cfg.model).to(device).eval()
    model.set_vocabulary([f'class {i}' for i in range(num_classes)])
    height, width = cfg.crop_size
    images = torch.randn(1, 3, height, width, device=device)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    with torch.no_grad():
        model_ms = _time(lambda: model(images, mode='tensor'), device, repeats)
        peak = _peak_memory_mb(device)
        encoder_ms = _time(lambda: model.backbone(images), device, repeats)
    return dict(config=path, input=f'{height}x{width}', classes=num_classes, params_m=total / 1e6,
                trainable_m=trainable / 1e6, forward_ms=model_ms, clip_encoder_ms=encoder_ms,
                head_overhead=model_ms / encoder_ms, peak_mem_mb=peak)


def benchmark_scan(device: torch.device, repeats: int, dim: int = 128, grid: int = 24, d_state: int = 16,
                   expand: float = 2.0, batch: int = 1) -> list[dict]:
    """The SS2D scan at the fusion's size: 4 directions x (expand * dim) channels over grid**2 steps."""
    channels, length = 4 * int(expand * dim), grid * grid
    gen = torch.Generator(device='cpu').manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=gen).to(device)

    u, delta = rand(batch, channels, length), rand(batch, channels, length)
    A = -torch.exp(rand(channels, d_state))
    B, C = rand(batch, 4, d_state, length), rand(batch, 4, d_state, length)
    rows = []
    backends = ['torch'] + (['cuda'] if device.type == 'cuda' and _load_cuda_kernel()[0] else [])
    for backend in backends:
        ms = _time(lambda: selective_scan(u, delta, A, B, C, delta_softplus=True, backend=backend), device,
                   repeats)
        rows.append(dict(backend=backend, shape=f'B{batch} D{channels} N{d_state} L{length}', ms=ms))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='+', help='model configs, e.g. configs/logoseg_vitb.py')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--classes', type=int, default=171, help='vocabulary size N (COCO-Stuff: 171)')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--out', help='also write the figures to this JSON file')
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda but torch sees no GPU')

    rows = []
    for path in args.configs:
        # a fresh process per config: CPU peak RSS is a per-process high-water mark
        with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context('spawn')) as pool:
            rows.append(pool.submit(benchmark_config, path, device, args.classes, args.repeats).result())
    print(f'device: {torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}, '
          f'threads: {torch.get_num_threads()}, batch 1, N = {args.classes}')
    print(f'{"config":34s} {"input":>8s} {"params M":>9s} {"train M":>8s} {"fwd ms":>9s} {"CLIP ms":>9s} '
          f'{"ratio":>6s} {"peak MB":>9s}')
    for r in rows:
        print(f'{r["config"]:34s} {r["input"]:>8s} {r["params_m"]:9.1f} {r["trainable_m"]:8.1f} '
              f'{r["forward_ms"]:9.1f} {r["clip_encoder_ms"]:9.1f} {r["head_overhead"]:6.2f} {r["peak_mem_mb"]:9.0f}')
    scans = benchmark_scan(device, args.repeats)
    for s in scans:
        print(f'selective scan [{s["backend"]}] {s["shape"]}: {s["ms"]:.2f} ms')
    if not any(s['backend'] == 'cuda' for s in scans):
        print('selective scan [cuda]: not measured (needs a CUDA device and mamba-ssm, pip install -e ".[cuda]")')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(models=rows, selective_scan=scans), f, indent=2)
    return 0 if all(math.isfinite(r['forward_ms']) for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
