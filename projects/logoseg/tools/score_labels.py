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
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..datasets.declared import PREPARED_ROOT, DeclaredDataset
from ..datasets.transforms import decode_label_map
from ..evaluation.metrics import HallucinationIoUMetric
from ..utils.errors import LoGoSegUserError
from ..utils.files import write_json
from .evaluate_all import REPORTED


def read_label(path: Path) -> np.ndarray:
    try:
        return decode_label_map(path.read_bytes(), source=str(path))
    except OSError as err:
        raise LoGoSegUserError(f'cannot read label map {path}: {err}') from None


def score_labels(labels: Path, dataset: str, split: Optional[str] = None,
                 prepared_root: str = PREPARED_ROOT) -> dict:
    """The metric's figures of the label maps under ``labels`` on ``split`` of the declared ``dataset``."""
    data = DeclaredDataset(dataset, split, prepared_root=prepared_root, serialize_data=False)  # checks name, split
    folder, split = Path(data.folder), data.split_name
    metric = HallucinationIoUMetric()
    metric.dataset_meta = data.metainfo
    num_classes = len(data.metainfo['classes'])
    for item in data.data_list:
        label = Path(item['seg_map_path'])
        predicted_path = labels / label.relative_to(folder / split / 'labels')
        if not predicted_path.is_file():
            raise LoGoSegUserError(f'no label map {predicted_path} for {label}; segment every '
                                   f'image of {folder / split / "images"} into OUT and pass OUT/labels')
        predicted, truth = read_label(predicted_path), read_label(label)
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
