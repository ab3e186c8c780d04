"""One GPU run of everything speed-related, against LoGoSeg's GPU targets; a JSON report and a printed table.

Measures, for one config (default ViT-B/16): inference at the evaluation protocol (a 640 image, the config's
slide + global views) in fp32 and in bf16 autocast, with N = 150 and 847 classes (text embeddings cached);
a training step (forward, backward, AdamW step) at batch 1 and 4 with peak memory, fp32 and bf16 autocast;
the selective scan (the PyTorch path vs cumsum and vs the previous scan, and mamba-ssm's CUDA kernel if it
imports). Targets: <= 15 ms per 640 image (bf16, 150 classes) and the 80k-iteration schedule in <= 4 h with
< 24 GB at batch 1 per GPU (extrapolated from the measured step time). Meant to take minutes on one GPU;
not yet run on one (docs/benchmark.md).

On a bare CUDA machine with only torch (and torchvision, timm, numpy, opencv, scipy, ...) installed, run it
through ``tools/gpu_benchmark.sh``, which installs LoGoSeg's pure-Python dependencies from wheels carried
next to the checkout (``.whl/``), downloaded once on a connected machine with::

    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \\
        -d .whl addict==2.4.0 ftfy==6.3.1 wcwidth==0.9.4 mmengine==0.10.7 mmcv-lite==2.1.0 \\
        mmsegmentation==1.2.2 open_clip_torch==3.3.0 prettytable==3.18.0 termcolor==3.3.0 yapf==0.43.0 \\
        platformdirs==4.14.8

``--dry-run`` runs the same code on the CPU with the tiny smoke model in seconds (the test suite does).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from logoseg.tools import benchmark as bench
from logoseg.utils.errors import LoGoSegUserError
from logoseg.utils import measurements
from logoseg.utils.files import write_json

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TARGETS = dict(ms_per_image=15.0, schedule_hours=4.0, train_peak_gb=24.0)
SCHEDULE_ITERS = 80_000


def run(config: str, device: torch.device, repeats: int, image_size: int, classes: tuple[int, int],
        batches: list[int], scan: bool) -> dict:
    report = dict(device=torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu',
                  torch=torch.__version__, config=config, threads=torch.get_num_threads(), repeats=repeats,
                  inference=[], train=[])
    started = time.perf_counter()
    for autocast in (False, True):
        row = bench.benchmark_config(config, device.type, None, repeats, image_size, classes, autocast=autocast)
        row['ms_per_image'] = row['eval_ms']
        report['inference'].append(row)
        _empty_cache(device)
    for autocast in (False, True):
        for batch in batches:
            row = bench.benchmark_train_step(config, device.type, None, repeats, batch, autocast=autocast)
            row['schedule_hours'] = row['step_ms'] * SCHEDULE_ITERS / 3.6e6
            report['train'].append(row)
            _empty_cache(device)
    if scan:
        report['selective_scan'] = bench.benchmark_scan(device, repeats, None, lambda fn, *args: fn(*args))
    report['seconds'] = time.perf_counter() - started
    report['targets'] = check_targets(report)
    return report


def _empty_cache(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.empty_cache()


def check_targets(report: dict) -> dict:
    """Each target with its measured value and whether it is met (bf16 inference, batch-1 training)."""
    bf16 = next(r for r in report['inference'] if r['autocast_bf16'])
    steps = {(r['autocast_bf16'], r['batch']): r for r in report['train']}
    targets = dict(ms_per_image=dict(target=TARGETS['ms_per_image'], measured=bf16['ms_per_image'],
                                     setting=f"bf16, {bf16['eval_classes']} classes, {len(bf16['eval_views'])} views"))
    for autocast in (False, True):
        step = steps.get((autocast, 1))
        if step is None:
            continue
        name = 'bf16' if autocast else 'fp32'
        targets[f'schedule_hours_{name}'] = dict(target=TARGETS['schedule_hours'], measured=step['schedule_hours'],
                                                 setting=f'{SCHEDULE_ITERS} iterations at batch 1, {name}')
        targets[f'train_peak_gb_{name}'] = dict(target=TARGETS['train_peak_gb'], measured=step['peak_mb'] / 1024,
                                                setting=f'batch 1, {name}')
    for entry in targets.values():
        entry['met'] = entry['measured'] <= entry['target']
    return targets


def print_table(report: dict) -> None:
    print(f"device: {report['device']}, torch {report['torch']}, config {report['config']}, "
          f"repeats {report['repeats']} (medians), {report['seconds']:.0f} s")
    print(f"\n{'inference':10s} {'views':>14s} {'ms/image':>9s} {'CLIP ms':>8s} {'ratio':>6s} {'N':>9s} {'ratio':>6s} "
          f"{'peak MB':>8s}")
    for r in report['inference']:
        views = f"{len(r['eval_views'])}x{r['eval_views'][0]}"
        print(f"{'bf16' if r['autocast_bf16'] else 'fp32':10s} {views:>14s} {r['ms_per_image']:9.2f} "
              f"{r['eval_encoder_ms']:8.2f} {r['eval_overhead']:6.2f} {r['large_classes']:>4d}/{r['eval_classes']:<4d} "
              f"{r['large_vocab_ratio']:6.2f} {r['inference_peak_mb']:8.0f}")
    print(f"\n{'training':10s} {'batch':>5s} {'step ms':>9s} {'peak MB':>9s} {'80k iters (h)':>14s}")
    for r in report['train']:
        print(f"{'bf16' if r['autocast_bf16'] else 'fp32':10s} {r['batch']:5d} {r['step_ms']:9.1f} {r['peak_mb']:9.0f} "
              f"{r['schedule_hours']:14.2f}")
    if 'selective_scan' in report:
        bench.print_report(dict(device=report['device'], threads=report['threads'], repeats=report['repeats'],
                                models=[], train=[], selective_scan=report['selective_scan']))
    print('\ntargets:')
    for name, t in report['targets'].items():
        verdict = 'met' if t['met'] else 'MISSED'
        print(f"  {name:22s} {t['measured']:9.2f} <= {t['target']:g}  {verdict}  ({t['setting']})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m logoseg.tools.gpu_benchmark', description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=os.path.join(REPO, 'configs', 'logoseg_vitb.py'),
                        help='model config (default: configs/logoseg_vitb.py)')
    parser.add_argument('--device', default='cuda', help='torch device (default: cuda)')
    parser.add_argument('--repeats', type=int, default=10, help='timed calls per figure; medians (default: 10)')
    parser.add_argument('--image-size', type=int, default=640, help='square test image of the evaluation protocol')
    parser.add_argument('--classes', type=int, nargs=2, default=(150, 847), metavar=('N', 'N_LARGE'),
                        help='vocabulary sizes compared at the evaluation protocol (A-150, A-847)')
    parser.add_argument('--train-batches', type=int, nargs='+', default=[1, 4],
                        help='batch sizes of the timed training steps')
    parser.add_argument('--dry-run', action='store_true',
                        help='the tiny smoke model on the CPU at small sizes: checks the script without a GPU')
    parser.add_argument('--out', default=os.path.join(os.environ.get('OUT', '.'), 'gpu_benchmark.json'),
                        help='JSON report (default: $OUT/gpu_benchmark.json, or ./gpu_benchmark.json)')
    parser.add_argument('--record', nargs='?', const=str(measurements.DEFAULT_RECORD), metavar='CSV',
                        help='append the figures, with this machine and today\'s date, to CSV (default '
                        'docs/benchmarks/speed.csv, the file docs/benchmark.md shows; commit it)')
    args = parser.parse_args(argv)
    scan = True
    if args.dry_run:
        args.config = os.path.join(REPO, 'configs', 'logoseg_smoke.py')
        args.device, args.repeats, args.image_size, args.classes = 'cpu', 1, 64, (3, 6)
        args.train_batches = [1, 2]
        scan = False  # the fusion-size scan alone takes seconds on a CPU; the benchmark's own test covers it
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise LoGoSegUserError('no CUDA device visible to torch; run on a GPU machine, or use --dry-run on a CPU')
    report = run(args.config, device, args.repeats, args.image_size, tuple(args.classes), args.train_batches, scan)
    report['dry_run'] = args.dry_run
    print_table(report)
    write_json(report, args.out)
    print(f'\nwrote {args.out}')
    if args.record:
        print(f"appended {measurements.record(report, report['device'], args.record)} figures to {args.record}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
