"""Colours for an open vocabulary: each class keeps its colour by name, in every run and every vocabulary.

A colour is picked from a fixed palette by a hash of the class's first name, so ``sky`` is the same colour in
``--vocab "sky, tree"`` and in ade150. The palette is spread evenly in CIELAB (greedy farthest points of an
sRGB grid): its first 96 colours differ pairwise by at least 19 ΔE (CIE76), its 256 by at least 12. When two
classes drawn together would share a colour, the one that comes later (smaller area, or later in the
vocabulary) takes the next colour of its own hash order that no earlier class holds.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Sequence

import numpy as np

from .vocab import first_synonym

PRIMARY = 96  # the colours a class's name picks from; the others (to 256) serve clashes only
PALETTE_SIZE = 256


def _srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of sRGB colours (..., 3) in 0-255."""
    linear = rgb / 255.0
    linear = np.where(linear > 0.04045, ((linear + 0.055) / 1.055) ** 2.4, linear / 12.92)
    to_xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = linear @ to_xyz.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def colour_distance(a: Sequence[int], b: Sequence[int]) -> float:
    """CIE76 ΔE between two sRGB colours (about 2: just noticeable side by side; above 10: clearly different)."""
    return float(np.linalg.norm(_srgb_to_lab(np.asarray(a, float)) - _srgb_to_lab(np.asarray(b, float))))


@lru_cache(maxsize=1)
def base_palette() -> tuple[tuple[int, int, int], ...]:
    """The 256 colours, each the grid colour farthest (ΔE) from those before it. Lightness is kept in 25-90, so
    that no colour vanishes on the white legend or reads as black text."""
    steps = np.arange(0, 256, 15)
    grid = np.stack(np.meshgrid(steps, steps, steps, indexing='ij'), -1).reshape(-1, 3).astype(float)
    lab = _srgb_to_lab(grid)
    usable = (lab[:, 0] > 25) & (lab[:, 0] < 90)
    grid, lab = grid[usable], lab[usable]
    chosen = [int(np.argmax(np.hypot(lab[:, 1], lab[:, 2])))]  # start from the most saturated colour
    nearest = np.linalg.norm(lab - lab[chosen[0]], axis=1)
    while len(chosen) < PALETTE_SIZE:
        chosen.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, np.linalg.norm(lab - lab[chosen[-1]], axis=1))
    return tuple(tuple(int(c) for c in grid[i]) for i in chosen)


@lru_cache(maxsize=4096)
def colour_order(name: str) -> tuple[int, ...]:
    """Indices into :func:`base_palette` in the order ``name`` prefers them: the 96 primaries in an order
    seeded by a hash of its first name (case-insensitive), then the rest."""
    seed = int.from_bytes(hashlib.sha256(first_synonym(name).lower().encode()).digest()[:8], 'little')
    primaries = np.random.default_rng(seed).permutation(PRIMARY)
    return tuple(int(i) for i in primaries) + tuple(range(PRIMARY, PALETTE_SIZE))


def class_colour(name: str) -> tuple[int, int, int]:
    """The colour of a class wherever nothing drawn beside it claims the same one."""
    return base_palette()[colour_order(name)[0]]


def assign_colours(names: Sequence[str], priority: Sequence[int]) -> list[tuple[int, int, int]]:
    """One colour per name: the classes at indices ``priority`` (first has precedence) get pairwise different
    palette colours, each its own unless an earlier one holds it; the other classes get their own colour.
    Beyond 256 prioritised classes colours repeat."""
    palette = base_palette()
    colours = [class_colour(name) for name in names]
    taken: set[int] = set()
    for index in priority:
        order = colour_order(names[index])
        free = next((i for i in order if i not in taken), order[0])
        taken.add(free)
        colours[index] = palette[free]
        if len(taken) == PALETTE_SIZE:
            taken.clear()
    return colours


def vocabulary_palette(names: Sequence[str]) -> list[tuple[int, int, int]]:
    """Colours of a vocabulary (MMSeg's ``dataset_meta['palette']``): by name, distinct in vocabulary order."""
    return assign_colours(names, range(len(names)))


def distinct_present_colours(names: Sequence[str], counts: Sequence[int]) -> tuple[tuple[int, int, int], ...]:
    """Colours of a vocabulary for one label map with ``counts`` pixels per class: the classes present are
    distinct, larger ones keeping their own colour first."""
    counts = np.asarray(counts)
    present = [int(i) for i in np.argsort(-counts, kind='stable') if counts[i] > 0]
    return tuple(assign_colours(names, present))
