"""Procedurally generated scenes for the CPU smoke profile, and the small shapes dataset built from them.

A scene is a background concept with two to four textured shapes (ellipses and rectangles) of other
concepts on top, each concept drawn with its own colour and texture (:data:`APPEARANCE`), and a 1-pixel
ignore border around every shape (so the masked loss is exercised). Concepts are named like the classes of
the benchmark vocabularies, so :mod:`logoseg.tools.prepare.smoke` draws the stand-ins of the training sets
and the six benchmarks with the same renderer. Generation is deterministic (one seed per split and index)
and runs on first use; output is written to a temporary folder and renamed into place, so an interrupted run
never leaves a half-written split that looks complete.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS
from PIL import Image

SMOKE_CLASSES = ('sky', 'grass', 'sand', 'water', 'brick')
# concept -> (mean colour (RGB), stripe period in pixels (0: flat), stripe direction: 'd'iagonal,
# 'h'orizontal or 'v'ertical). Stripes make texture, not colour alone, informative. Concepts that share a
# scene differ in colour by >= 50 (RGB distance) except where their textures differ.
APPEARANCE = {
    'sky': ((110, 160, 230), 0, 'd'),
    'grass': ((60, 150, 60), 3, 'd'),
    'sand': ((210, 190, 130), 0, 'd'),
    'water': ((40, 90, 170), 4, 'd'),
    'brick': ((170, 70, 50), 2, 'd'),
    'person': ((230, 175, 140), 0, 'd'),
    'bicycle': ((210, 30, 40), 2, 'v'),
    'boat': ((250, 240, 60), 0, 'd'),
    'bottle': ((40, 210, 200), 0, 'd'),
    'bus': ((245, 130, 20), 4, 'h'),
    'car': ((30, 40, 210), 0, 'd'),
    'chair': ((170, 110, 210), 3, 'v'),
    'bed': ((235, 225, 250), 0, 'd'),
    'bench': ((140, 95, 50), 3, 'h'),
    'book': ((150, 30, 150), 2, 'd'),
    'cabinet': ((95, 55, 25), 0, 'd'),
    'curtain': ((120, 0, 60), 4, 'v'),
    'fence': ((160, 160, 160), 2, 'v'),
    'flower': ((250, 100, 180), 3, 'd'),
    'light': ((255, 255, 170), 0, 'd'),
    'mountain': ((105, 105, 150), 4, 'd'),
    'road': ((60, 60, 60), 0, 'd'),
    'rock': ((125, 125, 100), 2, 'd'),
    'tree': ((20, 90, 30), 3, 'v'),
    'truck': ((0, 125, 140), 3, 'h'),
}
SPLIT_SEEDS = {'train': 0, 'val': 10_000}
_MARKER = 'COMPLETE'


def _texture(period: int, direction: str, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """(H, W) brightness factor: 1, or stripes alternating 0.75 / 1.25 every ``period`` pixels."""
    if not period:
        return np.ones(yy.shape, dtype=np.float32)
    coord = {'d': xx + yy, 'h': yy, 'v': xx}[direction]
    return (0.75 + 0.5 * (coord // period % 2)).astype(np.float32)


def render_scene(seed: int, size: int = 64, ignore_index: int = 255, classes: Sequence[str] = SMOKE_CLASSES,
                 backgrounds: Sequence[int] | None = None,
                 weights: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One (image uint8 (size, size, 3), label uint8 (size, size)) pair; labels index ``classes``.

    Args:
        seed: the scene's random seed.
        size: side of the square scene.
        ignore_index: label of the 1-pixel border around each shape.
        classes: concept names (keys of :data:`APPEARANCE`), at most 255.
        backgrounds: indices of the classes that may fill the background (default: all).
        weights: relative frequency of each class among the shapes (default: uniform).
    """
    unknown = [name for name in classes if name not in APPEARANCE]
    if unknown or not classes:
        raise ValueError(f'classes must be non-empty concepts of APPEARANCE; unknown: {unknown}')
    rng = np.random.default_rng(seed)
    fill = rng.integers(len(classes)) if backgrounds is None else backgrounds[rng.integers(len(backgrounds))]
    label = np.full((size, size), fill, dtype=np.uint8)
    p = None if weights is None else np.asarray(weights, dtype=np.float64) / np.sum(weights)
    yy, xx = np.mgrid[:size, :size]
    shapes = np.zeros((size, size), dtype=np.int32)
    for shape_id in range(1, rng.integers(2, 5) + 1):
        cls = rng.integers(len(classes)) if p is None else rng.choice(len(classes), p=p)
        cy, cx = rng.integers(0, size, 2)
        ry, rx = rng.integers(size // 8, size // 3, 2)
        if rng.random() < 0.5:
            mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        else:
            mask = (abs(yy - cy) <= ry) & (abs(xx - cx) <= rx)
        label[mask] = cls
        shapes[mask] = shape_id
    image = np.zeros((size, size, 3), dtype=np.float32)
    for cls, name in enumerate(classes):
        mask = label == cls
        if mask.any():
            colour, period, direction = APPEARANCE[name]
            shade = _texture(period, direction, yy, xx)
            image[mask] = np.asarray(colour, dtype=np.float32) * shade[mask, None]
    image += rng.normal(0, 12, image.shape)
    edges = np.zeros_like(label, dtype=bool)
    edges[1:] |= shapes[1:] != shapes[:-1]
    edges[:, 1:] |= shapes[:, 1:] != shapes[:, :-1]
    label[edges] = ignore_index
    return np.clip(image, 0, 255).astype(np.uint8), label


def generate_split(root: str | Path, split: str, num_images: int, size: int = 64) -> Path:
    """Write ``root/split/{images,labels}`` once; returns the split folder."""
    split_dir = Path(root) / split
    expected = f'{num_images} images of {size}x{size}\n'

    def complete() -> bool:
        marker = split_dir / _MARKER
        return marker.is_file() and marker.read_text() == expected

    if complete():
        return split_dir
    split_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{split}-', dir=split_dir.parent))
    try:
        (tmp / 'images').mkdir()
        (tmp / 'labels').mkdir()
        for index in range(num_images):
            image, label = render_scene(SPLIT_SEEDS[split] + index, size)
            Image.fromarray(image).save(tmp / 'images' / f'{index:04d}.png')
            Image.fromarray(label).save(tmp / 'labels' / f'{index:04d}.png')
        (tmp / _MARKER).write_text(expected)
        if split_dir.exists() and not complete():
            shutil.rmtree(split_dir)  # an interrupted attempt or other settings
        try:
            os.replace(tmp, split_dir)
        except OSError:  # another process (e.g. a second DDP rank) finished first
            if not complete():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return split_dir


@DATASETS.register_module()
class SmokeShapesDataset(BaseSegDataset):
    """The smoke dataset; ``data_root`` is created on first use.

    Args:
        split: ``'train'`` or ``'val'``.
        num_images: images in the split.
        image_size: side of the square images.
    """

    METAINFO = dict(classes=SMOKE_CLASSES,
                    palette=[list(APPEARANCE[name][0]) for name in SMOKE_CLASSES])

    def __init__(self, data_root: str, split: str = 'train', num_images: int = 64, image_size: int = 64,
                 **kwargs):
        if split not in SPLIT_SEEDS:
            raise ValueError(f'split must be one of {sorted(SPLIT_SEEDS)}, got {split!r}')
        generate_split(data_root, split, num_images, image_size)
        super().__init__(data_root=data_root, img_suffix='.png', seg_map_suffix='.png',
                         data_prefix=dict(img_path=f'{split}/images', seg_map_path=f'{split}/labels'), **kwargs)
