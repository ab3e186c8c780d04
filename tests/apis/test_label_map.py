"""The full-resolution label map: MMSeg's resize-then-argmax, built in memory that grows with pixels only."""
import pytest
import torch
import torch.nn.functional as F

from logoseg.apis import label_map as label_map_module
from logoseg.apis.label_map import candidate_classes, upsampled_argmax


def mmseg_labels(scores, size):
    """What MMSeg's postprocess_result computes: every class resized to the image, then the argmax."""
    return F.interpolate(scores[None], size=size, mode='bilinear', align_corners=False)[0].argmax(0)


def smooth_scores(num_classes, height, width, seed=0):
    """Class maps like a model's: each class a bump somewhere, so only a few classes win anywhere."""
    gen = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing='ij')
    centres = torch.rand(num_classes, 2, generator=gen)
    heights = torch.rand(num_classes, 1, 1, generator=gen)
    distance = (ys - centres[:, :1, None]) ** 2 + (xs - centres[:, 1:, None]) ** 2
    return heights - 4 * distance


@pytest.mark.parametrize('num_classes, low, high', [
    (5, (16, 16), (37, 53)),     # upsampling, odd ratio
    (40, (24, 24), (9, 11)),     # downsampling (an image smaller than the protocol's resolution)
    (3, (1, 1), (5, 7)),         # one protocol pixel
    (20, (1, 9), (4, 30)),       # a one-row image
    (847, (12, 12), (40, 31)),   # ade847
])
def test_same_labels_as_resizing_every_class(num_classes, low, high):
    for scores in (torch.randn(num_classes, *low) * 3, smooth_scores(num_classes, *low)):
        assert torch.equal(upsampled_argmax(scores, high), mmseg_labels(scores, high))


def test_ties_go_to_the_lower_class_as_argmax():
    scores = torch.zeros(4, 6, 6)
    scores[2:] = 1.0  # classes 2 and 3 tie everywhere
    assert (upsampled_argmax(scores, (13, 17)) == 2).all()


def test_classes_that_cannot_win_are_never_resized(monkeypatch):
    scores = smooth_scores(150, 32, 32)
    kept = candidate_classes(scores)
    winners = mmseg_labels(scores, (96, 96)).unique()
    assert set(winners.tolist()) <= set(kept.tolist()) and len(kept) < 50  # a third of the 150
    resized = []
    real = label_map_module.resize_scores
    monkeypatch.setattr(label_map_module, 'resize_scores',
                        lambda s, size, align: resized.append(s.shape[0]) or real(s, size, align))
    upsampled_argmax(scores, (96, 96))
    assert sum(resized) == len(kept)


def test_full_resolution_buffer_stays_within_its_budget(monkeypatch):
    """At most CHUNK_ELEMENTS scores at full resolution at once (at least one class): memory grows with the
    image's pixels, not with classes x pixels."""
    monkeypatch.setattr(label_map_module, 'CHUNK_ELEMENTS', 3 * 50 * 60)
    sizes = []
    real = label_map_module.resize_scores
    monkeypatch.setattr(label_map_module, 'resize_scores',
                        lambda s, size, align: sizes.append(s.shape[0] * size[0] * size[1]) or real(s, size, align))
    scores = torch.randn(64, 10, 10)
    labels = upsampled_argmax(scores, (50, 60))
    assert max(sizes) <= 3 * 50 * 60 and len(sizes) > 1
    assert torch.equal(labels, mmseg_labels(scores, (50, 60)))
    sizes.clear()
    upsampled_argmax(scores, (100, 120))  # larger than the budget: one class at a time
    assert max(sizes) == 100 * 120
