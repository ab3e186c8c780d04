"""Peak memory and time of ``logoseg segment`` per image size and vocabulary size (prints a table).

Each case runs in a fresh process, as ``logoseg segment`` on one image does: load the model, segment a
warm-up image (the vocabulary's text embeddings then come from the cache, as in any run after the first),
then segment the photo and write its three outputs. Reported per case: the process's peak resident memory
(VmHWM) after loading and warming up, its peak at the end, the time of ``predictor.segment`` and of writing
the outputs (overlay, label PNG, JSON), and how many classes the label map resized to full resolution (the
others could not win a pixel).

    python -m logoseg.tools.segment_benchmark                        # ViT-B/16, the paper's test protocol
    python -m logoseg.tools.segment_benchmark --checkpoint CKPT --megapixels 1 6 --vocab 4 ade150 --out b.json

Without ``--checkpoint`` the config's model is built with random weights and saved to a temporary
checkpoint: time and memory do not depend on the weights, except through the number of classes that can
win a pixel (reported), which random weights tend to raise.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from logoseg.utils import measurements

FOUR_CLASSES = ('wall', 'floor', 'sky', 'tree')
SIZES = {1: (1224, 816), 6: (3000, 2000), 24: (6000, 4000)}  # megapixels: width x height of a 3:2 photo
PHOTO = Path(__file__).resolve().parents[3] / 'tests' / 'data' / 'ade20k_val' / 'images' / 'ADE_val_00000001.jpg'


def peak_rss_mb() -> float:
    """The process's peak resident set (VmHWM), in MB."""
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) / 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def vocabulary(name: str):
    return FOUR_CLASSES if name == '4' else name


def run_case(config: str, checkpoint: str, megapixels: int, vocab: str, threads: int, cache_dir: str) -> dict:
    import torch
    torch.set_num_threads(threads)
    from PIL import Image

    import logoseg  # noqa: F401
    from logoseg.apis import LoGoSegPredictor, label_map
    from logoseg.apis.outputs import write_result

    resized = []
    real_resize = label_map.resize_scores
    label_map.resize_scores = lambda s, size, align: resized.append(s.shape[0]) or real_resize(s, size, align)
    predictor = LoGoSegPredictor(config, checkpoint, cache_dir=cache_dir)
    width, height = SIZES[megapixels]
    photo = np.asarray(Image.open(PHOTO).convert('RGB').resize((width, height), Image.BICUBIC))
    predictor.segment(photo[:64, :64], vocabulary(vocab))  # warm-up: text embeddings, first-call costs
    loaded_mb = peak_rss_mb()
    resized.clear()
    start = time.perf_counter()
    result = predictor.segment(photo, vocabulary(vocab))
    segment_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        write_result(result, 'photo.png', Path(out), Path('photo.png'), predictor)
        write_s = time.perf_counter() - start
    return dict(megapixels=round(width * height / 1e6, 1), size=f'{width}x{height}',
                classes=len(result.vocabulary), loaded_peak_mb=round(loaded_mb), peak_mb=round(peak_rss_mb()),
                segment_s=round(segment_s, 2), write_s=round(write_s, 2), classes_resized=sum(resized))


def random_checkpoint(config: str, folder: Path) -> str:
    """The config's model with random weights, saved as a checkpoint the predictor loads."""
    import torch
    from mmengine.config import Config

    from logoseg.apis.model import build_model
    cfg = Config.fromfile(config)
    torch.manual_seed(0)
    model = build_model(cfg)
    path = folder / 'random_init.pth'
    torch.save(dict(state_dict=model.state_dict(), meta={}), path)
    return str(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m logoseg.tools.segment_benchmark',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('--config', default='configs/logoseg_vitb.py', help='model config (default: %(default)s)')
    parser.add_argument('--checkpoint', help='a trained checkpoint of --config (default: random weights)')
    parser.add_argument('--megapixels', type=int, nargs='+', choices=sorted(SIZES), default=sorted(SIZES),
                        help='photo sizes to segment, in megapixels (default: all)')
    parser.add_argument('--vocab', nargs='+', default=['4', 'ade150', 'ade847'],
                        help="'4' (wall, floor, sky, tree) or shipped vocabularies")
    parser.add_argument('--threads', type=int, default=2, help='torch threads (default: %(default)s)')
    parser.add_argument('--out', type=Path, help='also write the rows as JSON')
    parser.add_argument('--record', nargs='?', const=str(measurements.DEFAULT_RECORD), metavar='CSV',
                        help='append the rows, with this machine and today\'s date, to CSV (default '
                        'docs/benchmarks/speed.csv, the file docs/benchmark.md shows; commit it)')
    args = parser.parse_args(argv)
    context = mp.get_context('spawn')  # a fresh process per case: its peak memory is that case's
    rows = []
    with tempfile.TemporaryDirectory() as work:
        checkpoint = args.checkpoint
        if checkpoint is None:
            with context.Pool(1) as pool:
                checkpoint = pool.apply(random_checkpoint, (args.config, Path(work)))
        cache_dir = str(Path(work) / 'text_cache')
        print(f'{"MP":>5} {"size":>10} {"classes":>7} {"peak after load MB":>18} {"peak MB":>8} '
              f'{"segment s":>9} {"write s":>7} {"resized":>7}', flush=True)
        for megapixels in args.megapixels:
            for vocab in args.vocab:
                with context.Pool(1) as pool:
                    row = pool.apply(run_case, (args.config, checkpoint, megapixels, vocab, args.threads, cache_dir))
                rows.append(row)
                print(f'{row["megapixels"]:>5} {row["size"]:>10} {row["classes"]:>7} {row["loaded_peak_mb"]:>18} '
                      f'{row["peak_mb"]:>8} {row["segment_s"]:>9} {row["write_s"]:>7} {row["classes_resized"]:>7}',
                      flush=True)
    if args.out:
        args.out.write_text(json.dumps(dict(config=args.config, checkpoint=args.checkpoint or 'random weights',
                                            threads=args.threads, rows=rows), indent=2) + '\n')
    if args.record:
        report = dict(config=args.config, threads=args.threads, repeats=1, segment=rows)
        print(f"appended {measurements.record(report, 'cpu', args.record)} figures to {args.record}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
