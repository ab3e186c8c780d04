"""Speed and size of LoGoSeg per backbone config, as ratios measured side by side in one process.

Per config (each in a fresh process, so CPU peak memory is that config's):
  * training crop: full forward (N classes, text embeddings cached) vs the bare CLIP image encoder on the
    same input; their ratio is the head's overhead;
  * evaluation protocol: ``model.inference`` on a square test image with the config's ``test_cfg`` (slide
    windows + global view for ViTs), vs the bare encoder over exactly the views the protocol fed it;
  * the same protocol with a large vocabulary (847 vs 150 classes, embeddings cached): their time ratio, and
    with ``test_cfg.prior_top_k`` (only the top-k classes of the object prior get image-resolution scores);
  * a training step (forward, backward, optimizer step) at batch 1 and 4: time and peak memory.
Then the selective scan of the SS2D branch at the fusion's size: forward at batch 1 and forward + backward at
batch 4, vs one ``torch.cumsum`` over a (batch, channels, states, steps) tensor (the cost floor of any scan)
and vs the previous log-depth implementation (:func:`previous_selective_scan`), with peak memory; and
mamba-ssm's CUDA kernel when CUDA and the kernel exist.

    python -m logoseg.tools.benchmark configs/logoseg_vitb.py configs/logoseg_vitl.py --threads 1

Timings interleave the compared functions and report medians, so load on a shared machine shifts both
sides of a ratio alike. On CPU, peak memory is the process's peak resident set (VmHWM).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from typing import Callable

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

import logoseg  # noqa: F401  (compat fixes, registrations)
from logoseg.models.selective_scan import _load_cuda_kernel, selective_scan, selective_scan_torch
from logoseg.utils import measurements
from logoseg.utils.errors import LoGoSegUserError
from logoseg.utils.files import write_json

DEFAULT_TOP_K = 64  # the suggested test_cfg.prior_top_k (docs/evaluation.md) for A-847 / PC-459
SCAN_SHAPE = dict(channels=1024, d_state=16, length=576)  # SS2D at the fusion's size: 4 x 256 channels, 24 x 24


def sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_side_by_side(fns: dict[str, Callable[[], object]], device: torch.device, repeats: int,
                      warmup: int = 1) -> dict[str, float]:
    """Median wall time in ms of each function, the functions called in turn within every repeat."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: sorted(t)[len(t) // 2] for name, t in times.items()}


def reset_peak(device: torch.device) -> float:
    """Start a peak-memory window; returns the baseline (MB) that :func:`peak_mb` subtracts on CUDA."""
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / 2**20
    try:  # Linux >= 4.0: resets the resident-set high-water mark (VmHWM) to the current resident set
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        pass  # then the window starts at the process's start; the callers run in fresh processes
    return 0.0


def peak_mb(device: torch.device) -> float:
    """Peak CUDA allocation since :func:`reset_peak`, or on CPU this process's peak resident set (VmHWM).

    Not ``ru_maxrss``: a spawned process inherits its parent's maximum through ``execve``.
    """
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2**20
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith('VmHWM:')) / 1024  # kB


def current_rss_mb() -> float:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def random_model(path: str, device: torch.device, num_classes: int, cfg_options: dict | None = None):
    """The config's model with random weights (timing does not depend on their values), N generic classes."""
    from mmengine.config import Config
    from mmengine.logging import MMLogger

    from logoseg.apis.model import build_model

    if not MMLogger.check_instance_created('logoseg_benchmark'):  # quiet the optimizer's per-parameter lines
        MMLogger.get_instance('logoseg_benchmark', log_level='WARNING')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model = build_model(cfg, device=device)
    model.set_vocabulary(vocabulary(num_classes))
    return cfg, model


def vocabulary(num_classes: int) -> list[str]:
    return [f'class {i}' for i in range(num_classes)]


def recorded_encoder_inputs(model, fn: Callable[[], object]) -> list[torch.Tensor]:
    """The image batches ``fn()`` passes through ``model.backbone`` (the views of the inference protocol)."""
    seen = []
    handle = model.backbone.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        fn()
    finally:
        handle.remove()
    return seen


def benchmark_config(path: str, device: str, threads: int | None, repeats: int, image_size: int,
                     classes: tuple[int, int], autocast: bool = False, prior_top_k: int | None = None) -> dict:
    """Crop and evaluation-protocol ratios of one config; run in a fresh process."""
    device = torch.device(device)
    if threads:
        torch.set_num_threads(threads)
    small, large = classes
    cfg, model = random_model(path, device, small)
    model.eval()
    height, width = cfg.crop_size
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    crop = torch.randn(1, 3, height, width, device=device)
    image = torch.randn(1, 3, image_size, image_size, device=device)
    metas = [dict(img_shape=(image_size, image_size), ori_shape=(image_size, image_size),
                  pad_shape=(image_size, image_size))]
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if autocast else nullcontext()
    baseline = reset_peak(device)
    with torch.no_grad(), amp:
        crop_ms = time_side_by_side({'model': lambda: model(crop, mode='tensor'),
                                     'encoder': lambda: model.backbone(crop)}, device, repeats)
        views = recorded_encoder_inputs(model, lambda: model.inference(image, metas))

        def encoder_views():
            for view in views:
                model.backbone(view)

        def infer(n: int, top_k: int | None = None) -> Callable[[], object]:
            def run():
                model.set_vocabulary(vocabulary(n))
                model.test_cfg['prior_top_k'] = top_k
                return model.inference(image, metas)
            return run

        model.text_encoder(vocabulary(large))  # cached, as a deployed model's vocabulary is
        fns = {'model': infer(small), 'encoder': encoder_views, 'large': infer(large)}
        top_k = prior_top_k if model.test_cfg.get('mode') == 'slide_global' else None  # the option's only mode
        if top_k:
            fns['large_top_k'] = infer(large, top_k)
        eval_ms = time_side_by_side(fns, device, repeats)
    return dict(
        config=path, crop=f'{height}x{width}', params_m=total / 1e6, trainable_m=trainable / 1e6,
        crop_forward_ms=crop_ms['model'], crop_encoder_ms=crop_ms['encoder'],
        crop_overhead=crop_ms['model'] / crop_ms['encoder'],
        eval_image=f'{image_size}x{image_size}', eval_mode=model.test_cfg.get('mode', 'whole'),
        eval_views=[f'{v.shape[-2]}x{v.shape[-1]}' for v in views for _ in range(len(v))], eval_classes=small,
        eval_ms=eval_ms['model'], eval_encoder_ms=eval_ms['encoder'],
        eval_overhead=eval_ms['model'] / eval_ms['encoder'],
        large_classes=large, large_eval_ms=eval_ms['large'], large_vocab_ratio=eval_ms['large'] / eval_ms['model'],
        prior_top_k=top_k, large_top_k_eval_ms=eval_ms.get('large_top_k'),
        large_top_k_ratio=eval_ms['large_top_k'] / eval_ms['model'] if top_k else None,
        inference_peak_mb=peak_mb(device) - baseline, autocast_bf16=autocast,
    )


def benchmark_train_step(path: str, device: str, threads: int | None, repeats: int, batch: int,
                         num_classes: int = 171, autocast: bool = False) -> dict:
    """Time and peak memory of one optimizer step at ``batch`` (the config's optimizer); a fresh process."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    device = torch.device(device)
    if threads:
        torch.set_num_threads(threads)
    cfg, model = random_model(path, device, num_classes)
    model.train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    height, width = cfg.crop_size
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, height, width, generator=gen).to(device)
    samples = []
    for _ in range(batch):
        labels = torch.randint(0, num_classes, (1, height, width), generator=gen).to(device)
        samples.append(SegDataSample(gt_sem_seg=PixelData(data=labels),
                                     metainfo=dict(img_shape=(height, width), ori_shape=(height, width))))
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if autocast else nullcontext()

    def step():
        with amp:
            losses = model.loss(images, samples)
        optim.update_params(sum(v for k, v in losses.items() if 'loss' in k))

    rss_before = current_rss_mb()
    baseline = reset_peak(device)
    ms = time_side_by_side({'step': step}, device, repeats)['step']
    peak = peak_mb(device)
    return dict(config=path, batch=batch, crop=f'{height}x{width}', step_ms=ms, autocast_bf16=autocast,
                peak_mb=peak - baseline if device.type == 'cuda' else peak,
                step_memory_mb=peak - baseline if device.type == 'cuda' else peak - rss_before)


# ---------------------------------------------------------------------------------------------------------
# The selective scan


def previous_selective_scan(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False):
    """LoGoSeg's previous PyTorch scan (log-depth Hillis-Steele over whole sequences), kept as the reference
    the benchmark compares the current :func:`selective_scan_torch` against. Same arguments and result."""
    batch, channels, length = u.shape
    groups, d_state = B.shape[1], A.shape[1]
    delta = delta + delta_bias[:, None] if delta_bias is not None else delta
    delta = F.softplus(delta) if delta_softplus else delta
    a = torch.exp(delta[:, :, None, :] * A[None, :, :, None])  # (batch, Dch, N, L)
    du = (delta * u).reshape(batch, groups, channels // groups, 1, length)
    b = (du * B[:, :, None]).reshape(batch, channels, d_state, length)
    h = _PreviousRecurrence.apply(a, b)
    y = (h.reshape(batch, groups, channels // groups, d_state, length) * C[:, :, None]).sum(3)
    y = y.reshape(batch, channels, length)
    return y + D[:, None] * u if D is not None else y


def _hillis_steele_(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    length, step = a.shape[-1], 1
    while step < length:
        b[..., step:] += a[..., step:] * b[..., :-step]
        if 2 * step < length:
            a[..., step:] = a[..., step:] * a[..., :-step]
        step *= 2
    return b


class _PreviousRecurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b):
        h = _hillis_steele_(a.clone(), b.clone())
        ctx.save_for_backward(a, h)
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h):
        a, h = ctx.saved_tensors
        a_rev = torch.empty_like(a)
        a_rev[..., 0] = 0
        a_rev[..., 1:] = a[..., 1:].flip(-1)
        g = _hillis_steele_(a_rev, grad_h.flip(-1)).flip(-1)
        grad_a = torch.zeros_like(a)
        grad_a[..., 1:] = g[..., 1:] * h[..., :-1]
        return grad_a, g


SCANS = {'current': selective_scan_torch, 'previous': previous_selective_scan}


def scan_inputs(batch: int, device: torch.device, requires_grad: bool = False, channels: int = 1024,
                d_state: int = 16, length: int = 576, groups: int = 4) -> dict:
    """SS2D-like inputs: step sizes around Mamba's initial dt, A = -(1..N)-scaled decays."""
    gen = torch.Generator().manual_seed(0)

    def leaf(x):
        return x.to(device).requires_grad_(requires_grad)

    return dict(u=leaf(torch.randn(batch, channels, length, generator=gen)),
                delta=leaf(torch.randn(batch, channels, length, generator=gen) - 3),
                A=leaf(-torch.rand(channels, d_state, generator=gen) * d_state),
                B=leaf(torch.randn(batch, groups, d_state, length, generator=gen)),
                C=leaf(torch.randn(batch, groups, d_state, length, generator=gen)),
                D=leaf(torch.ones(channels)), delta_bias=leaf(torch.zeros(channels)))


def _forward_backward(fn, inputs: dict) -> None:
    y = fn(**inputs, delta_softplus=True)
    y.backward(torch.ones_like(y))


def scan_peak_memory(name: str, device: str, threads: int | None, batch: int, shape: dict) -> float:
    """Memory (MB) that one forward + backward of scan ``name`` adds at ``batch``; a fresh process on CPU."""
    device = torch.device(device)
    if threads:
        torch.set_num_threads(threads)
    inputs = scan_inputs(batch, device, requires_grad=True, **shape)
    _forward_backward(SCANS[name], inputs)  # allocator caches and grads in place before the window
    if device.type == 'cuda':
        baseline = reset_peak(device)
        _forward_backward(SCANS[name], inputs)
        return peak_mb(device) - baseline
    before = current_rss_mb()
    reset_peak(device)
    _forward_backward(SCANS[name], inputs)
    return peak_mb(device) - before


def benchmark_scan(device: torch.device, repeats: int, threads: int | None, fresh_process: Callable,
                   shape: dict = SCAN_SHAPE) -> dict:
    """Scan forward (batch 1) and forward + backward (batch 4) vs cumsum and vs the previous scan."""
    out = {'shape': f"Dch {shape['channels']} N {shape['d_state']} L {shape['length']}"}
    floor1 = torch.randn(1, shape['channels'], shape['d_state'], shape['length'], device=device)
    result = torch.empty_like(floor1)
    inputs = scan_inputs(1, device, **shape)
    # 'cumsum' allocates its result, as the floor does (on CPU that includes page faults, whose cost
    # depends on the allocator's state); 'cumsum_warm' and 'exp_warm' write into a reused buffer: one pass of
    # pure arithmetic, and the one exp per element that exact decays exp(delta A) need
    fns = {'cumsum': lambda: torch.cumsum(floor1, -1),
           'cumsum_warm': lambda: torch.cumsum(floor1, -1, out=result),
           'exp_warm': lambda: torch.exp(floor1, out=result)}
    fns.update({name: (lambda fn=fn: fn(**inputs, delta_softplus=True)) for name, fn in SCANS.items()})
    if device.type == 'cuda' and _load_cuda_kernel()[0] is not None:
        fns['cuda_kernel'] = lambda: selective_scan(**inputs, delta_softplus=True, backend='cuda')
    with torch.no_grad():
        out['forward_b1_ms'] = time_side_by_side(fns, device, repeats)
    floor1 = result = None  # free them before the batch-4 tensors (the timed closures are done)
    floor4 = torch.randn(4, shape['channels'], shape['d_state'], shape['length'], device=device)
    inputs = scan_inputs(4, device, requires_grad=True, **shape)
    fns = {'cumsum': lambda: torch.cumsum(floor4, -1)}
    fns.update({name: (lambda fn=fn: _forward_backward(fn, inputs)) for name, fn in SCANS.items()})
    out['forward_backward_b4_ms'] = time_side_by_side(fns, device, repeats)
    floor4 = inputs = None
    out['forward_backward_b4_peak_mb'] = {name: fresh_process(scan_peak_memory, name, device.type, threads, 4, shape)
                                          for name in SCANS}
    fwd, fb = out['forward_b1_ms'], out['forward_backward_b4_ms']
    out['ratios'] = dict(forward_vs_cumsum=fwd['current'] / fwd['cumsum'],
                         forward_vs_warm_cumsum=fwd['current'] / fwd['cumsum_warm'],
                         warm_exp_vs_warm_cumsum=fwd['exp_warm'] / fwd['cumsum_warm'],
                         forward_backward_vs_cumsum=fb['current'] / fb['cumsum'],
                         forward_speedup_vs_previous=fwd['previous'] / fwd['current'],
                         forward_backward_speedup_vs_previous=fb['previous'] / fb['current'])
    return out


def in_fresh_process(fn: Callable, *args):
    """``fn(*args)`` in a spawned process: CPU peak memory is a per-process high-water mark."""
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context('spawn')) as pool:
        return pool.submit(fn, *args).result()


def print_report(report: dict) -> None:
    print(f"device: {report['device']}, threads: {report['threads']}, repeats: {report['repeats']} (medians)")
    models = report['models']
    if models:
        print(f"\n{'config':30s} {'params M':>8s} {'train M':>7s} | {'crop':>7s} {'model ms':>9s} {'CLIP ms':>8s} "
              f"{'ratio':>5s} | {'eval views':>14s} {'model ms':>9s} {'CLIP ms':>8s} {'ratio':>5s} | "
              f"{'N':>7s} {'ratio':>5s} {'top-k':>9s}")
        for r in models:
            views = f"{len(r['eval_views'])}x{r['eval_views'][0]}"
            print(f"{os.path.basename(r['config']):30s} {r['params_m']:8.1f} {r['trainable_m']:7.1f} | {r['crop']:>7s} "
                  f"{r['crop_forward_ms']:9.1f} {r['crop_encoder_ms']:8.1f} {r['crop_overhead']:5.2f} | "
                  f"{views:>14s} {r['eval_ms']:9.1f} {r['eval_encoder_ms']:8.1f} {r['eval_overhead']:5.2f} | "
                  f"{r['large_classes']:>3d}/{r['eval_classes']:<3d} {r['large_vocab_ratio']:5.2f} "
                  + (f"{r['prior_top_k']:>3d}: {r['large_top_k_ratio']:4.2f}" if r['prior_top_k'] else f"{'-':>9s}"))
    if report['train']:
        print(f"\n{'config':30s} {'batch':>5s} {'step ms':>9s} {'peak MB':>9s} {'step MB':>8s}")
        for r in report['train']:
            print(f"{os.path.basename(r['config']):30s} {r['batch']:5d} {r['step_ms']:9.1f} {r['peak_mb']:9.0f} "
                  f"{r['step_memory_mb']:8.0f}")
    scan = report.get('selective_scan')
    if scan:
        fwd, fb, mem = scan['forward_b1_ms'], scan['forward_backward_b4_ms'], scan['forward_backward_b4_peak_mb']
        print(f"\nselective scan ({scan['shape']}): {'cumsum':>8s} {'current':>8s} {'previous':>9s}")
        print(f"  forward, batch 1 (ms)            {fwd['cumsum']:8.1f} {fwd['current']:8.1f} {fwd['previous']:9.1f}"
              f"   (into a reused buffer: cumsum {fwd['cumsum_warm']:.1f}, exp {fwd['exp_warm']:.1f})")
        print(f"  forward + backward, batch 4 (ms) {fb['cumsum']:8.1f} {fb['current']:8.1f} {fb['previous']:9.1f}")
        print(f"  fwd + bwd batch 4 memory (MB)    {'':8s} {mem['current']:8.0f} {mem['previous']:9.0f}")
        ratios = scan['ratios']
        print(f"  current / cumsum: forward {ratios['forward_vs_cumsum']:.2f}x "
              f"({ratios['forward_vs_warm_cumsum']:.2f}x the reused-buffer cumsum, whose exp alone is "
              f"{ratios['warm_exp_vs_warm_cumsum']:.2f}x), forward + backward "
              f"{ratios['forward_backward_vs_cumsum']:.2f}x; speed-up over previous: forward "
              f"{ratios['forward_speedup_vs_previous']:.1f}x, forward + backward "
              f"{ratios['forward_backward_speedup_vs_previous']:.1f}x")
        if 'cuda_kernel' in fwd:
            print(f"  mamba-ssm CUDA kernel, forward batch 1: {fwd['cuda_kernel']:.3f} ms")
        else:
            print('  mamba-ssm CUDA kernel: not measured (needs a CUDA device and mamba-ssm, pip install -e ".[cuda]")')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m logoseg.tools.benchmark', description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='*', help='model configs, e.g. configs/logoseg_vitb.py')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        help='cpu or cuda (default: cuda when torch sees a GPU)')
    parser.add_argument('--threads', type=int, help='torch threads per process (default: torch\'s own)')
    parser.add_argument('--repeats', type=int, default=3, help='timed calls per figure; medians (default: 3)')
    parser.add_argument('--image-size', type=int, default=640, help='square test image of the evaluation protocol')
    parser.add_argument('--classes', type=int, nargs=2, default=(150, 847), metavar=('N', 'N_LARGE'),
                        help='vocabulary sizes compared at the evaluation protocol (A-150, A-847)')
    parser.add_argument('--prior-top-k', type=int, default=DEFAULT_TOP_K, metavar='K',
                        help='also time N_LARGE classes with test_cfg.prior_top_k=K (slide_global configs; 0: '
                        f'skip; default {DEFAULT_TOP_K})')
    parser.add_argument('--train-batches', type=int, nargs='*', default=[1, 4],
                        help='batch sizes of the timed training steps (none: skip)')
    parser.add_argument('--no-scan', action='store_true', help='skip the selective-scan section')
    parser.add_argument('--scan-shape', type=int, nargs=3, metavar=('DCH', 'N', 'L'),
                        default=tuple(SCAN_SHAPE.values()), help='scan channels, states, steps (default: SS2D '
                        'at the fusion size, 4 x 256 channels, 16 states, 24 x 24 steps)')
    parser.add_argument('--out', help='also write the figures to this JSON file')
    parser.add_argument('--record', nargs='?', const=str(measurements.DEFAULT_RECORD), metavar='CSV',
                        help='append the figures, with this machine and today\'s date, to CSV (default '
                        'docs/benchmarks/speed.csv, the file docs/benchmark.md shows; commit it)')
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise LoGoSegUserError('--device cuda but torch sees no GPU; use --device cpu')
    if not args.configs and args.no_scan:
        raise LoGoSegUserError('nothing to measure: give model configs or drop --no-scan')
    for path in args.configs:
        if not os.path.isfile(path):
            raise LoGoSegUserError(f'config {path} not found; pass model configs such as configs/logoseg_vitb.py')
    if args.threads:
        torch.set_num_threads(args.threads)
    report = dict(device=torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu',
                  threads=torch.get_num_threads(), repeats=args.repeats, models=[], train=[])
    for path in args.configs:  # a line per finished measurement: a long CPU run shows its progress
        row = in_fresh_process(benchmark_config, path, device.type, args.threads, args.repeats, args.image_size,
                               tuple(args.classes), False, args.prior_top_k or None)
        report['models'].append(row)
        top_k = f", with prior_top_k={row['prior_top_k']} {row['large_top_k_ratio']:.2f}" if row['prior_top_k'] else ''
        print(f"{path}: overhead {row['crop_overhead']:.2f} at the crop, {row['eval_overhead']:.2f} at the "
              f"evaluation protocol; {row['large_classes']}/{row['eval_classes']} classes "
              f"{row['large_vocab_ratio']:.2f}{top_k}", flush=True)
        for batch in args.train_batches:
            row = in_fresh_process(benchmark_train_step, path, device.type, args.threads, args.repeats, batch)
            report['train'].append(row)
            print(f"{path}: training step at batch {batch}: {row['step_ms']:.0f} ms, peak {row['peak_mb']:.0f} MB",
                  flush=True)
    if not args.no_scan:
        shape = dict(zip(SCAN_SHAPE, args.scan_shape))
        report['selective_scan'] = benchmark_scan(device, args.repeats, args.threads, in_fresh_process, shape)
    print_report(report)
    if args.out:
        write_json(report, args.out)
    if args.record:
        rows = measurements.record(report, report['device'], args.record)
        print(f'appended {rows} figures to {args.record}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
