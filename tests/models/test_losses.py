import math

import pytest
import torch

from logoseg.models.losses import MaskedBCELoss
from logoseg.utils.errors import LoGoSegUserError


def eq13_by_loops(logits, labels, ignore_index):
    """Eq 13 written out: sum over valid pixels and classes of the BCE, divided by the valid-pixel count."""
    total, valid = 0.0, 0
    batch, classes, height, width = logits.shape
    for b in range(batch):
        for i in range(height):
            for j in range(width):
                if labels[b, i, j] == ignore_index:
                    continue
                valid += 1
                for n in range(classes):
                    y = 1.0 if labels[b, i, j] == n else 0.0
                    p = 1 / (1 + math.exp(-float(logits[b, n, i, j])))
                    total -= y * math.log(p) + (1 - y) * math.log(1 - p)
    return total / valid


def test_eq13_matches_direct_formula_and_ignores_masked_pixels():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 3, 5, dtype=torch.float64)
    labels = torch.randint(0, 4, (2, 3, 5))
    labels[0, 0, :3] = 255
    labels[1, 2, 4] = 255
    loss = MaskedBCELoss()(logits, labels, ignore_index=255)
    assert loss.item() == pytest.approx(eq13_by_loops(logits, labels, 255), rel=1e-10)
    # whatever the logits at ignored pixels, the loss does not change
    changed = logits.clone()
    changed[0, :, 0, :3] = 50.0
    assert MaskedBCELoss()(changed, labels, ignore_index=255).item() == pytest.approx(loss.item(), rel=1e-12)


def test_catseg_reduction_is_mean_over_all_elements_with_zero_targets_at_ignored_pixels():
    torch.manual_seed(1)
    logits = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    labels = torch.randint(0, 3, (1, 4, 4))
    labels[0, 0] = 65535
    target = torch.zeros_like(logits)
    for i in range(4):
        for j in range(4):
            if labels[0, i, j] != 65535:
                target[0, labels[0, i, j], i, j] = 1
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    loss = MaskedBCELoss(normalize='all_elements')(logits, labels, ignore_index=65535)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)


def test_all_ignored_batch_gives_zero_loss_not_nan():
    loss = MaskedBCELoss()(torch.randn(1, 2, 2, 2), torch.full((1, 2, 2), 255), ignore_index=255)
    assert loss.item() == 0.0


def test_label_outside_vocabulary_is_a_clear_error():
    with pytest.raises(LoGoSegUserError, match='outside the vocabulary of 3 classes'):
        MaskedBCELoss()(torch.randn(1, 3, 2, 2), torch.tensor([[[0, 1], [2, 7]]]), ignore_index=255)


def test_unknown_normalization_is_rejected():
    with pytest.raises(LoGoSegUserError, match='normalize'):
        MaskedBCELoss(normalize='mean')
