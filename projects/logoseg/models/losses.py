"""Masked multi-label binary cross-entropy (paper eq 13)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

from ..utils.errors import LoGoSegUserError

NORMALIZATIONS = ('valid_pixels', 'all_elements')


@MODELS.register_module()
class MaskedBCELoss(nn.Module):
    """Eq 13: per-class sigmoid BCE against one-hot labels, summed over classes and valid pixels (M = 1).

    Args:
        normalize: ``'valid_pixels'`` divides by sum(M) as in eq 13; ``'all_elements'`` is CAT-Seg's
            reduction (mean over every pixel and class, ignored pixels given all-zero targets), whose
            gradient is N * |pixels| / |valid| times smaller.
        loss_weight: multiplier of the loss.
        loss_name: key of the loss in the returned dict (MMSeg logs keys starting with ``loss``).
    """

    def __init__(self, normalize: str = 'valid_pixels', loss_weight: float = 1.0, loss_name: str = 'loss_bce'):
        super().__init__()
        if normalize not in NORMALIZATIONS:
            raise LoGoSegUserError(f'model.decode_head.loss_decode.normalize={normalize!r}: use one of '
                                   f'{", ".join(map(repr, NORMALIZATIONS))}')
        self.normalize = normalize
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
        """logits (B, N, H, W), labels (B, H, W) integer class ids or ``ignore_index`` -> scalar."""
        num_classes = logits.shape[1]
        valid = labels != ignore_index
        if bool((labels[valid] >= num_classes).any()) or bool((labels[valid] < 0).any()):
            bad = int(labels[valid & ((labels >= num_classes) | (labels < 0))][0])
            raise LoGoSegUserError(f'label {bad} is outside the vocabulary of {num_classes} classes; '
                                   'the dataset classes and the model vocabulary disagree')
        target = F.one_hot(torch.where(valid, labels, 0).long(), num_classes).permute(0, 3, 1, 2)
        target = target.to(logits.dtype) * valid.unsqueeze(1)
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction='none')
        if self.normalize == 'valid_pixels':
            loss = (bce.sum(dim=1) * valid).sum() / valid.sum().clamp(min=1)
        else:
            loss = bce.mean()
        return self.loss_weight * loss
