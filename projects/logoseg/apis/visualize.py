"""Colour overlay of a label map with a legend a person can read at any image size.

MMSeg's ``SegLocalVisualizer`` renders through a matplotlib figure as large as the image: it fails on
one-pixel images and holds several full-size RGBA buffers for a 24 MP photo. The overlay here is a palette
lookup blended by OpenCV, and the legend is drawn by Pillow with its own scalable font.
"""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..utils.vocab import first_synonym

MAX_LEGEND_ENTRIES = 12
# Legend text height as a share of the drawn width (image, or image | overlay): about 15 px when the whole
# overlay is shown 1000 px wide, whatever the photo's size; never below MIN_FONT_PX.
FONT_SHARE = 1 / 55
MIN_FONT_PX = 13
MAX_NAME_CHARS = 28


def legend_entries(label_map: np.ndarray, classes: Sequence[str],
                   max_entries: int = MAX_LEGEND_ENTRIES) -> list[tuple[int | None, str]]:
    """(class index, text) per legend line: the classes present, largest first, by their first name and share
    of the pixels; past ``max_entries`` lines the rest are summed up in a last line ``+ N more`` (index None)."""
    counts = np.bincount(np.asarray(label_map).ravel(), minlength=len(classes))
    present = [int(i) for i in np.argsort(-counts, kind='stable') if counts[i] > 0]
    total = max(int(counts.sum()), 1)
    shown = present if len(present) <= max_entries else present[:max(max_entries - 1, 1)]
    entries: list[tuple[int | None, str]] = [(i, f'{_short(first_synonym(classes[i]))}  {_percent(counts[i] / total)}')
                                             for i in shown]
    if len(shown) < len(present):
        rest = present[len(shown):]
        entries.append((None, f'+ {len(rest)} more  {_percent(counts[rest].sum() / total)}'))
    return entries


def legend_font_px(drawn_width: int) -> int:
    """Text height (pixels) of the legend beside a drawing ``drawn_width`` pixels wide."""
    return max(MIN_FONT_PX, math.ceil(drawn_width * FONT_SHARE))


def draw_overlay(image: np.ndarray, label_map: np.ndarray, classes: Sequence[str],
                 palette: Sequence[Sequence[int]], alpha: float = 0.5, max_legend: int = MAX_LEGEND_ENTRIES,
                 side_by_side: bool = False) -> np.ndarray:
    """The image tinted by each pixel's class colour, with a legend panel on its right.

    Args:
        image: (H, W, 3) uint8 RGB; label_map: (H, W) class indices; classes / palette: N names and N RGB colours.
        alpha: weight of the class colours.
        max_legend: legend lines at most (the largest classes; the others as ``+ N more``).
        side_by_side: the image itself left of the overlay.

    Returns:
        (max(H, legend height), W (or 2 W) + legend width, 3) uint8 RGB.
    """
    image = np.ascontiguousarray(image, dtype=np.uint8)
    colours = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)[np.asarray(label_map)]
    tinted = cv2.addWeighted(colours, alpha, image, 1.0 - alpha, 0.0)  # in uint8: no full-size float copy
    del colours
    drawn = np.concatenate([image, tinted], axis=1) if side_by_side else tinted
    del tinted
    height, width = drawn.shape[:2]

    entries = legend_entries(label_map, classes, max_legend)
    font_px = legend_font_px(width)
    font = ImageFont.load_default(size=font_px)
    row, margin = round(font_px * 1.5), font_px
    swatch = font_px
    text_width = max(math.ceil(font.getlength(text)) for _, text in entries)
    panel_width = margin + swatch + margin // 2 + text_width + margin
    canvas = Image.new('RGB', (width + panel_width, max(height, 2 * margin + row * len(entries))), 'white')
    canvas.paste(Image.fromarray(drawn), (0, 0))
    del drawn
    pen = ImageDraw.Draw(canvas)
    outline = max(1, font_px // 12)
    for line, (index, text) in enumerate(entries):
        top = margin + line * row
        x0 = width + margin
        if index is not None:
            box = (x0, top + (row - swatch) // 2, x0 + swatch, top + (row + swatch) // 2)
            pen.rectangle(box, fill=tuple(int(c) for c in palette[index]), outline='black', width=outline)
        pen.text((x0 + swatch + margin // 2, top + row / 2), text, fill='black', font=font, anchor='lm')
    return np.asarray(canvas)


def _short(name: str) -> str:
    return name if len(name) <= MAX_NAME_CHARS else name[:MAX_NAME_CHARS - 3] + '...'


def _percent(fraction: float) -> str:
    return '<0.1%' if fraction < 0.0005 else f'{100 * fraction:.1f}%'
