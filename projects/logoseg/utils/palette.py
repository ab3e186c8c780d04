"""Colours for an open vocabulary: any number of classes, neighbouring indices far apart."""
from __future__ import annotations

import colorsys

_GOLDEN = 0.6180339887498949


def vocabulary_palette(num_classes: int) -> list[tuple[int, int, int]]:
    """``num_classes`` RGB colours (0-255): hues stepped by the golden ratio, so that any few consecutive
    classes differ in hue by at least 1/N of a turn, with alternating saturation and brightness."""
    colours = []
    for index in range(num_classes):
        hue = (index * _GOLDEN) % 1.0
        saturation = (0.85, 0.55)[index % 2]
        value = (0.95, 0.75, 0.55)[(index // 2) % 3]
        colours.append(tuple(round(255 * c) for c in colorsys.hsv_to_rgb(hue, saturation, value)))
    return colours
