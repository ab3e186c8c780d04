"""A small procedurally generated segmentation dataset for the CPU smoke profile.

Images are scenes of textured shapes, each shape's class set by its colour and texture, with a 1-pixel
ignore border around every shape (so the masked loss is exercised). Generation is deterministic (one seed
per split and index) and runs on first use; output is written to a temporary folder and renamed into place,
so an interrupted run never leaves a half-written split that looks complete.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS
from PIL import Image

SMOKE_CLASSES = ('sky', 'grass', 'sand', 'water', 'brick')
# mean colour (RGB) and stripe period of each class; stripes make texture, not colour alone, informative
_APPEARANCE = {
    0: ((110, 160, 230), 0),
    1: ((60, 150, 60), 3),
    2: ((210, 190, 130), 0),
    3: ((40, 90, 170), 4),
    4: ((170, 70, 50), 2),
}
SPLIT_SEEDS = {'train': 0, 'val': 10_000}
_MARKER = 'COMPLETE'


def render_scene(seed: int, size: int = 64, ignore_index: int = 255) -> tuple[np.ndarray, np.ndarray]:
    """One (image uint8 (size, size, 3), label uint8 (size, size)) pair."""
    rng = np.random.default_rng(seed)
    label = np.full((size, size), rng.integers(len(SMOKE_CLASSES)), dtype=np.uint8)
    yy, xx = np.mgrid[:size, :size]
    shapes = np.zeros((size, size), dtype=np.int32)
    for shape_id in range(1, rng.integers(2, 5) + 1):
        cls = rng.integers(len(SMOKE_CLASSES))
        cy, cx = rng.integers(0, size, 2)
        ry, rx = rng.integers(size // 8, size // 3, 2)
        if rng.random() < 0.5:
            mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        else:
            mask = (abs(yy - cy) <= ry) & (abs(xx - cx) <= rx)
        label[mask] = cls
        shapes[mask] = shape_id
    image = np.zeros((size, size, 3), dtype=np.float32)
    for cls, (colour, period) in _APPEARANCE.items():
        mask = label == cls
        shade = np.ones((size, size), dtype=np.float32)
        if period:
            shade = 0.75 + 0.5 * ((xx + yy) // period % 2)
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
                    palette=[[110, 160, 230], [60, 150, 60], [210, 190, 130], [40, 90, 170], [170, 70, 50]])

    def __init__(self, data_root: str, split: str = 'train', num_images: int = 64, image_size: int = 64,
                 **kwargs):
        if split not in SPLIT_SEEDS:
            raise ValueError(f'split must be one of {sorted(SPLIT_SEEDS)}, got {split!r}')
        generate_split(data_root, split, num_images, image_size)
        super().__init__(data_root=data_root, img_suffix='.png', seg_map_suffix='.png',
                         data_prefix=dict(img_path=f'{split}/images', seg_map_path=f'{split}/labels'), **kwargs)
