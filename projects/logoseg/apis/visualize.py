"""Colour overlay of a label map with a legend of the classes present, drawn with MMSeg's visualiser."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer


def draw_overlay(image: np.ndarray, label_map: np.ndarray, classes: Sequence[str],
                 palette: Sequence[Sequence[int]], alpha: float = 0.5) -> np.ndarray:
    """The image with each pixel tinted by its class colour, and a legend panel on its right.

    The legend lists the classes present in ``label_map``, in vocabulary order, with their share of the
    pixels. Args: image (H, W, 3) uint8 RGB, label_map (H, W) class indices, N classes and N RGB colours.
    Returns (max(H, legend height), W + legend width, 3) uint8 RGB.
    """
    visualizer = SegLocalVisualizer(name='logoseg_overlay', alpha=alpha)
    visualizer.dataset_meta = dict(classes=list(classes), palette=[tuple(c) for c in palette])
    sample = SegDataSample(pred_sem_seg=PixelData(data=torch.from_numpy(np.asarray(label_map)[None])))
    visualizer.add_datasample('overlay', image, sample, draw_gt=False, with_labels=False)
    overlay = visualizer.get_image()

    counts = np.bincount(np.asarray(label_map).ravel(), minlength=len(classes))
    present = np.flatnonzero(counts)
    entries = [f'{classes[i]}  {_percent(counts[i] / label_map.size)}' for i in present]
    height, width = overlay.shape[:2]
    row = int(np.clip(round(height / 20), 14, 40))  # pixels per legend line
    margin = row // 2
    text_width = int(0.45 * row * max(len(text) for text in entries))  # generous for DejaVu Sans
    panel_width = margin + row + margin + text_width + margin
    canvas = np.full((max(height, 2 * margin + row * len(entries)), width + panel_width, 3), 255, np.uint8)
    canvas[:height, :width] = overlay
    visualizer.set_image(canvas)
    x0 = width + margin
    tops = margin + row * np.arange(len(entries))
    swatches = np.stack([np.full(len(entries), x0), tops + row * 0.15, np.full(len(entries), x0 + row * 0.7),
                         tops + row * 0.85], axis=1)
    visualizer.draw_bboxes(swatches, edge_colors='black', face_colors=[tuple(palette[i]) for i in present],
                           alpha=1.0, line_widths=1)
    positions = np.stack([np.full(len(entries), x0 + row), tops + row / 2], axis=1)
    # matplotlib sizes text in points: 72 per inch, at the visualiser's dots per inch
    font_size = int(0.6 * row * 72 / visualizer.dpi)
    visualizer.draw_texts(entries, positions, colors='black', font_sizes=font_size, vertical_alignments='center')
    return visualizer.get_image()


def _percent(fraction: float) -> str:
    return '<0.1%' if fraction < 0.0005 else f'{100 * fraction:.1f}%'
