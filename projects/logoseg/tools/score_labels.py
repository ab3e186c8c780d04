"""Score label maps written by ``logoseg segment`` against a declared dataset's masks, with the metric of every
evaluation (``HallucinationIoUMetric``: MMSeg's mIoU, aAcc, mAcc, plus the hallucination figures).

    logoseg segment prepared/datasets/standin/val/images --vocab-file prepared/datasets/standin/classes.txt \\
        --config CONFIG --checkpoint CKPT --out OUT
    python -m logoseg.tools.score_labels OUT/labels --dataset standin [--split val] [--out scores.json]

``segment`` names each label map after its image's path below the folder it was given, as the prepared
labels are named, so the two pair up by name. The dataset's classes (its ``classes.txt``) must be the
vocabulary the labels were predicted with: a label value is an index into it. Every image of the split needs
a label map; a missing or mis-sized one is an error naming it.
"""
from __future__ import annotations

import argparse
import os.path as osp
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..datasets.declared import PREPARED_ROOT, load_manifest
from ..datasets.transforms import decode_label_map
from ..evaluation.metrics import HallucinationIoUMetric
from ..utils.errors import LoGoSegUserError
from ..utils.files import write_json

REPORTED = ('mIoU', 'aAcc', 'mAcc', 'hallucination_rate', 'hallucinated_classes')


def read_label(path: Path) -> np.ndarray:
    try:
        return decode_label_map(path.read_bytes(), source=str(path))
    except OSError as err:
        raise LoGoSegUserError(f'cannot read label map {path}: {err}') from None


def score_labels(labels: Path, dataset: str, split: Optional[str] = None,
                 prepared_root: str = PREPARED_ROOT) -> dict:
    """The metric's figures of the label maps under ``labels`` on ``split`` of the declared ``dataset``."""
    manifest = load_manifest(dataset, prepared_root)
    split = split or manifest['eval_split']
    if split not in manifest['splits']:
        raise LoGoSegUserError(f'dataset {dataset!r} has no split {split!r}; it has {", ".join(manifest["splits"])}')
    folder = Path(prepared_root) / dataset
    metric = HallucinationIoUMetric()
    metric.dataset_meta = dict(classes=tuple(manifest['classes']), ignore_index=manifest['ignore_index'])
    num_classes = len(manifest['classes'])
    for _, label in manifest['splits'][split]['items']:
        name = Path(label).relative_to(Path(split) / 'labels')
        predicted_path = labels / name
        if not predicted_path.is_file():
            raise LoGoSegUserError(f'no label map {predicted_path} for {osp.join(folder, label)}; segment every '
                                   f'image of {folder / split / "images"} into OUT and pass OUT/labels')
        predicted, truth = read_label(predicted_path), read_label(folder / label)
        if predicted.shape != truth.shape:
            raise LoGoSegUserError(f'label map {predicted_path} is {predicted.shape[1]}x{predicted.shape[0]}, its '
                                   f'image {truth.shape[1]}x{truth.shape[0]}; segment the prepared images')
        if predicted.max() >= num_classes:
            raise LoGoSegUserError(f'label map {predicted_path} holds class {predicted.max()} but {dataset} has '
                                   f'{num_classes} classes; segment with --vocab-file {folder / "classes.txt"}')
        metric.process({}, [dict(pred_sem_seg=dict(data=torch.from_numpy(predicted.astype(np.int64))[None]),
                                 gt_sem_seg=dict(data=torch.from_numpy(truth.astype(np.int64))[None]))])
    figures = metric.compute_metrics(metric.results)
    return {key: round(float(figures[key]), 4) for key in REPORTED} | dict(num_images=len(metric.results))


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog='python -m logoseg.tools.score_labels',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('labels', type=Path, help="the labels/ folder of `logoseg segment`'s output")
    parser.add_argument('--dataset', required=True, help='a dataset declared in params.yaml and prepared')
    parser.add_argument('--split', help="its split (default: the declaration's eval_split)")
    parser.add_argument('--out', type=Path, help='also write the figures to this JSON file')
    args = parser.parse_args(argv)
    if not args.labels.is_dir():
        raise LoGoSegUserError(f'{args.labels} is not a folder; pass the labels/ folder that `logoseg segment '
                               '--out OUT` wrote (OUT/labels)')
    figures = score_labels(args.labels, args.dataset, args.split)
    print(' '.join(f'{key}: {value}' for key, value in figures.items()))
    if args.out:
        write_json(figures, args.out)


if __name__ == '__main__':
    main()
