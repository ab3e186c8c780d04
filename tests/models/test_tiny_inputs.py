"""MMSeg's segmentor test protocol (predict under no_grad) on any input size, in every inference mode."""
import pytest
import torch
from mmseg.structures import SegDataSample

from logoseg.models.segmentor import INFERENCE_MODES

WINDOWS = dict(crop_size=(16, 16), stride=(8, 8))


@pytest.mark.parametrize('mode', INFERENCE_MODES)
def test_predict_on_any_size_down_to_one_pixel(build_tiny_model, mode):
    test_cfg = dict(mode=mode, **({} if mode == 'whole' else WINDOWS))
    model = build_tiny_model(test_cfg=test_cfg).eval()
    for batch, height, width in [(2, 8, 16), (1, 1, 1), (1, 1, 9), (1, 9, 1), (1, 20, 37)]:
        inputs = torch.rand(batch, 3, height, width)
        meta = dict(img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width),
                    padding_size=[0, 0, 0, 0])
        with torch.no_grad():
            results = model.predict(inputs, [SegDataSample(metainfo=meta) for _ in range(batch)])
        for result in results:
            assert result.pred_sem_seg.data.shape == (1, height, width), (mode, height, width)
            assert result.seg_logits.data.shape == (5, height, width)
            assert torch.isfinite(result.seg_logits.data).all()
            assert 0 <= int(result.pred_sem_seg.data.min()) and int(result.pred_sem_seg.data.max()) < 5
