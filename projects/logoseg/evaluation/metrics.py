"""mIoU plus how often a model predicts classes that are not in the image (object hallucination)."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS

from ..utils.errors import LoGoSegUserError


def hallucinated_classes(area_pred: torch.Tensor, area_label: torch.Tensor,
                         min_pixel_fraction: float) -> torch.Tensor:
    """Classes one image predicts on more than ``min_pixel_fraction`` of its valid pixels but has no pixel of.

    Args:
        area_pred: (N,) predicted pixels per class, ignore pixels excluded (``IoUMetric``'s third output).
        area_label: (N,) ground-truth pixels per class, ignore pixels excluded (its fourth).
        min_pixel_fraction: share of the image's valid pixels a prediction must exceed to count.

    Returns:
        (N,) bool mask of the hallucinated classes.
    """
    return (area_pred > min_pixel_fraction * area_pred.sum()) & (area_label == 0)


@METRICS.register_module()
class HallucinationIoUMetric(IoUMetric):
    """MMSeg's ``IoUMetric`` (mIoU, aAcc, mAcc, ...) plus image-level hallucination figures.

    A class is hallucinated in an image when it is predicted on more than ``min_pixel_fraction`` of the
    image's valid (non-ignore) pixels and no valid ground-truth pixel has it. Reported:
    ``hallucination_rate``, the fraction of images with at least one hallucinated class, and
    ``hallucinated_classes``, their mean number per image. Both come from the per-image areas IoUMetric
    already collects, so distributed evaluation gathers them the same way.

    Args:
        min_pixel_fraction: see above; 0.001 ignores stray pixels along boundaries.
        ignore_index: label value excluded from scoring. ``None`` takes the dataset's
            ``metainfo['ignore_index']`` (255 when it has none); a value that contradicts it is an error.
        **kwargs: ``IoUMetric`` arguments.
    """

    def __init__(self, min_pixel_fraction: float = 0.001, ignore_index: Optional[int] = None, **kwargs) -> None:
        if not 0 <= min_pixel_fraction < 1:
            raise LoGoSegUserError(f'min_pixel_fraction must be in [0, 1), got {min_pixel_fraction}')
        super().__init__(ignore_index=255 if ignore_index is None else ignore_index, **kwargs)
        self.min_pixel_fraction = min_pixel_fraction
        self._ignore_index_given = ignore_index is not None

    @BaseMetric.dataset_meta.setter
    def dataset_meta(self, dataset_meta: Optional[dict]) -> None:
        self._dataset_meta = dataset_meta
        declared = (dataset_meta or {}).get('ignore_index')
        if declared is None:
            return
        if self._ignore_index_given and declared != self.ignore_index:
            raise LoGoSegUserError(f'metric ignore_index {self.ignore_index} contradicts the dataset\'s '
                                   f'{declared}; drop ignore_index from the evaluator config')
        self.ignore_index = declared

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        num_classes = len(self.dataset_meta['classes'])
        for sample in data_samples:
            top = int(sample['pred_sem_seg']['data'].max())
            if top >= num_classes:
                raise LoGoSegUserError(
                    f'prediction holds class {top} but the dataset scores {num_classes} classes; prompt '
                    'classes past the scored ones must be merged (metainfo background_index, merge_background)')
        super().process(data_batch, data_samples)

    def compute_metrics(self, results: list) -> dict[str, float]:
        metrics = super().compute_metrics(results)
        if self.format_only:
            return metrics
        counts = torch.stack([
            hallucinated_classes(area_pred, area_label, self.min_pixel_fraction).sum()
            for _, _, area_pred, area_label in results
        ]).double()
        metrics['hallucination_rate'] = round(float((counts > 0).double().mean()), 4)
        metrics['hallucinated_classes'] = round(float(counts.mean()), 4)
        return metrics
