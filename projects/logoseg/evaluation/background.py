"""Scoring a prompt vocabulary larger than the scored classes (PAS-20b)."""
from __future__ import annotations

from typing import Optional

import torch


def merge_background(pred: torch.Tensor, background_index: Optional[int]) -> torch.Tensor:
    """Map prompt-space class indices to scored ones: every index >= ``background_index`` becomes it.

    PAS-20b prompts 59 names (the 20 VOC classes first) and scores 21 classes; index 20 is background.
    ``None`` (every other benchmark) returns ``pred`` unchanged. Any shape; a new tensor otherwise.
    """
    if background_index is None:
        return pred
    return pred.clamp(max=background_index)
