"""Label loading that keeps 16-bit class indices (A-847 and PC-459 label maps hold values above 255)."""
from __future__ import annotations

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS

from ..utils.errors import LoGoSegUserError

LABEL_DTYPE = np.uint16


def decode_label_map(data: bytes, backend: str = 'pillow', source: str = '<bytes>') -> np.ndarray:
    """Decode a single-channel PNG or TIFF label map without narrowing it: (H, W) uint16.

    Both mmcv backends ('pillow', 'cv2') return 16-bit PNG and TIFF (uncompressed, deflate, LZW) maps as
    uint16; 'tifffile' reads only TIFF and, without imagecodecs, no LZW.
    """
    label = mmcv.imfrombytes(data, flag='unchanged', backend=backend).squeeze()
    if label.ndim != 2:
        raise LoGoSegUserError(f'label map {source} has shape {label.shape}; expected one channel of class indices')
    if not np.issubdtype(label.dtype, np.integer):
        raise LoGoSegUserError(f'label map {source} holds {label.dtype} values; expected integer class indices')
    if label.size and (label.min() < 0 or label.max() > np.iinfo(LABEL_DTYPE).max):
        raise LoGoSegUserError(f'label map {source} holds values outside 0..65535; expected class indices')
    return label.astype(LABEL_DTYPE, copy=False)


@TRANSFORMS.register_module()
class LoadSegAnnotations(LoadAnnotations):
    """MMSeg's ``LoadAnnotations`` without its uint8 cast: ``gt_seg_map`` is (H, W) uint16.

    The parent casts every label map to uint8, turning A-847's class 300 into 44 and its ignore value
    65535 into 255. ``reduce_zero_label`` and ``label_map`` behave as in the parent: 0 and 255 become 255,
    every other value v becomes v - 1 (the parent's rule, for 8-bit maps whose ignore value is 255).

    An image without a label (``mmseg.apis.inference_model`` on a bare image, which strips only the
    stock ``LoadAnnotations`` from the test pipeline) passes through unchanged.
    """

    def transform(self, results: dict) -> dict:
        if 'seg_map_path' not in results:
            return results
        return super().transform(results)

    def _load_seg_map(self, results: dict) -> None:
        data = fileio.get(results['seg_map_path'], backend_args=self.backend_args)
        label = decode_label_map(data, self.imdecode_backend, results['seg_map_path'])
        if self.reduce_zero_label is None:
            self.reduce_zero_label = results['reduce_zero_label']
        if self.reduce_zero_label != results['reduce_zero_label']:
            raise ValueError(f'dataset has reduce_zero_label={results["reduce_zero_label"]} but the '
                             f'transform has {self.reduce_zero_label}; set it on the dataset only')
        if self.reduce_zero_label:
            ignored = (label == 0) | (label == 255)
            label = label - 1  # uint16: 0 wraps, and is overwritten just below
            label[ignored] = 255
        if results.get('label_map') is not None:
            source = label.copy()  # map from the original values, not from already remapped ones
            for old_id, new_id in results['label_map'].items():
                label[source == old_id] = new_id
        results['gt_seg_map'] = label
        results['seg_fields'].append('gt_seg_map')
