"""The full-resolution label map of protocol-resolution class scores, in memory that grows with pixels only.

MMSeg's ``postprocess_result`` resizes the scores of every class to the original image, then takes the
argmax: N x H x W floats (a 24 MP photo with 847 classes: 80 GB). Here the same bilinear resize and argmax
run a few classes at a time with a running maximum, and classes that cannot win any pixel are never resized.

Why a class can be skipped: a bilinear resize without antialiasing (MMSeg's ``resize``) makes each output
pixel a convex combination of one 2 x 2 block of input pixels (clamped at the borders). A class whose largest
score on every block is below some other class's smallest score on that block loses every pixel the block
feeds, so its resized map cannot change the argmax. The test is made with a margin far above float rounding,
so the labels are those of resizing every class.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# Elements of the full-resolution chunk buffer (float32: 128 MB): the classes resized at once are as many as fit.
CHUNK_ELEMENTS = 1 << 25
# Margin of the skipping test, relative to the scores' magnitude: a bilinear weight sum is off 1 by a few float
# ulps (1e-7 relative); a class within this margin of winning is resized.
MARGIN = 1e-4


def _block_reduce(pixels: torch.Tensor, start: int, stop: int, op) -> torch.Tensor:
    """``op`` (torch.maximum / minimum) over every 2 x 2 block (i..i+1, j..j+1, clamped at the last row and
    column) of the rows ``start:stop`` of ``pixels`` (h, w, N): (stop - start, w, N)."""
    strip = pixels[start:min(stop + 1, pixels.shape[0])].float()
    rows = op(strip[:-1], strip[1:])
    if len(strip) == stop - start:  # the image's last row: its block is itself
        rows = torch.cat([rows, strip[-1:]])
    return torch.cat([op(rows[:, :-1], rows[:, 1:]), rows[:, -1:]], dim=1)


def candidate_classes(scores: torch.Tensor, rows: int = 16) -> torch.Tensor:
    """Indices (ascending) of the classes of ``scores`` (N, h, w) that may win a pixel of any bilinear resize.

    Works on strips of ``rows`` rows with the classes innermost, the protocol's channels-last memory order, so
    each strip is read once and in order (by class chunks it took far longer at 847 classes:
    docs/benchmarks/design.csv).
    """
    height = scores.shape[1]
    pixels = scores.permute(1, 2, 0)  # (h, w, N)
    floor = torch.cat([_block_reduce(pixels, top, min(top + rows, height), torch.minimum).amax(dim=2)
                       for top in range(0, height, rows)])  # per block: the best smallest score of any class
    keep = torch.zeros(scores.shape[0], dtype=torch.bool, device=scores.device)
    for top in range(0, height, rows):
        upper = _block_reduce(pixels, top, min(top + rows, height), torch.maximum)
        bar = floor[top:top + len(upper), :, None]
        margin = MARGIN * (upper.abs() + bar.abs() + 1e-6)
        keep |= ((upper + margin) >= bar).flatten(0, 1).any(dim=0)
    return keep.nonzero().flatten()


def resize_scores(scores: torch.Tensor, size: tuple[int, int], align_corners: bool) -> torch.Tensor:
    """MMSeg's resize of class maps (n, h, w) to ``size``: bilinear, as ``postprocess_result`` does."""
    return F.interpolate(scores[None], size=size, mode='bilinear', align_corners=align_corners)[0]


def upsampled_argmax(scores: torch.Tensor, size: tuple[int, int], align_corners: bool = False) -> torch.Tensor:
    """The argmax over classes of ``scores`` (N, h, w) resized bilinearly to ``size`` (H, W): (H, W) int64.

    Equal to ``resize(scores, size).argmax(0)`` (ties go to the lower index), with at most
    ``CHUNK_ELEMENTS`` full-resolution scores in memory besides the (H, W) running maximum and labels.
    """
    height, width = size
    classes = candidate_classes(scores) if scores.shape[0] > 1 else torch.zeros(1, dtype=torch.long)
    labels = torch.zeros(size, dtype=torch.long, device=scores.device)
    if len(classes) == 1:
        return labels.fill_(int(classes[0]))
    best = torch.full(size, -torch.inf, dtype=torch.float32, device=scores.device)
    step = max(1, CHUNK_ELEMENTS // (height * width))
    for start in range(0, len(classes), step):
        chosen = classes[start:start + step]
        resized = resize_scores(scores[chosen].float(), size, align_corners)
        if len(chosen) == 1:
            values, index = resized[0], None
        else:
            values, index = resized.max(dim=0)  # first maximum within the chunk, as argmax
        better = values > best  # strictly: an earlier class keeps a tie, as argmax
        torch.where(better, values, best, out=best)
        if index is None:
            labels.masked_fill_(better, int(chosen[0]))
        else:
            torch.where(better, chosen.to(labels.device)[index], labels, out=labels)
        del resized, values, index, better
    return labels
