"""Test-time protocols: CAT-Seg's sliding windows + global view, MMSeg's sliding windows, their geometry."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmseg.models.segmentors import EncoderDecoder

from ..conftest import REPO


def metas_for(images):
    size = tuple(images.shape[-2:])
    return [dict(img_shape=size, pad_shape=size, ori_shape=size) for _ in range(len(images))]


def catseg_reference(model, image, kernel, stride, clip_resolution):
    """CAT-Seg's ``inference_sliding_window`` (one image, square sizes), with LoGoSeg's network in its place:
    windows cut by nn.Unfold, plus the image resized to the window as a global view; every view resized to the
    CLIP input; logits resized to the window, sigmoid; windows folded back and averaged; mean with the global
    view's scores."""
    out_res = image.shape[-2:]
    unfold = nn.Unfold(kernel_size=kernel, stride=stride)
    fold = nn.Fold(out_res, kernel_size=kernel, stride=stride)
    windows = unfold(image)[0].T.reshape(-1, 3, kernel, kernel)  # "(C H W) L -> L C H W"
    global_image = F.interpolate(image, size=(kernel, kernel), mode='bilinear', align_corners=False)
    views = torch.cat([windows, global_image])
    views = F.interpolate(views, size=clip_resolution, mode='bilinear', align_corners=False)
    logits = torch.cat([model.decode_head(model.extract_feat(view[None])) for view in views])
    outputs = F.interpolate(logits, size=kernel, mode='bilinear', align_corners=False).sigmoid()
    global_output = F.interpolate(outputs[-1:], size=out_res, mode='bilinear', align_corners=False)
    outputs = fold(outputs[:-1].flatten(1).T) / fold(unfold(torch.ones([1, 1, *out_res])))
    return (outputs + global_output) / 2


def test_slide_global_is_catsegs_sliding_window_inference(build_tiny_model):
    # CAT-Seg's numbers scaled down by 4 for the tiny model: 160 image, 96 windows, stride 64, 64 CLIP input
    model = build_tiny_model(test_cfg=dict(mode='slide_global', crop_size=(96, 96), stride=(64, 64),
                                           input_size=(64, 64))).eval()
    image = torch.rand(1, 3, 160, 160, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = model.inference(image, metas_for(image))
        reference = catseg_reference(model, image, kernel=96, stride=64, clip_resolution=(64, 64))
    assert ours.shape == (1, 5, 160, 160)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)


def test_slide_without_input_size_is_mmsegs_slide_inference(build_tiny_model):
    model = build_tiny_model(test_cfg=dict(mode='slide', crop_size=(64, 64), stride=(40, 40))).eval()
    images = torch.rand(2, 3, 96, 112, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model.inference(images, metas_for(images))
        mmseg = EncoderDecoder.slide_inference(model, images, metas_for(images))
    torch.testing.assert_close(ours, mmseg, atol=1e-6, rtol=1e-6)


def record_forwards(model):
    """Replace the network by a recorder: (input size, size the logits are resized to) of each forward."""
    calls = []

    def encode_decode(inputs, batch_img_metas):
        calls.append((tuple(inputs.shape[-2:]), tuple(batch_img_metas[0]['img_shape'])))
        return inputs.new_zeros((len(inputs), model.out_channels, *batch_img_metas[0]['img_shape']))

    model.encode_decode = encode_decode
    return calls


@pytest.mark.parametrize('config, input_size', [('logoseg_vitb.py', 384), ('logoseg_vitl.py', 336)])
def test_vit_configs_use_catsegs_windows(build_tiny_model, config, input_size):
    cfg = Config.fromfile(str(REPO / 'configs' / config))
    resize = next(step for step in cfg.test_dataloader.dataset.pipeline if step.type == 'Resize')
    assert resize.scale == (640, 640) and not resize.keep_ratio
    model = build_tiny_model(test_cfg=cfg.model.test_cfg).eval()  # the config's test_cfg on a tiny network
    assert model.test_cfg == dict(mode='slide_global', crop_size=(384, 384), stride=(256, 256),
                                  input_size=(input_size, input_size))
    assert model.window_boxes(640, 640) == [(0, 0, 384, 384), (0, 256, 384, 640),
                                            (256, 0, 640, 384), (256, 256, 640, 640)]  # 2 x 2
    calls = record_forwards(model)
    image = torch.zeros(1, 3, 640, 640)
    scores = model.inference(image, metas_for(image))
    assert scores.shape == (1, 5, 640, 640)
    # 4 windows + 1 global view, each fed at the backbone's input and its scores resized back to 384
    assert calls == [((input_size, input_size), (384, 384))] * 5


def test_the_earlier_vitl_scheme_stays_reachable(build_tiny_model):
    model = build_tiny_model(test_cfg=dict(mode='slide_global', crop_size=(336, 336), stride=(224, 224),
                                           input_size=(336, 336)))
    calls = record_forwards(model)
    image = torch.zeros(1, 3, 640, 640)
    model.inference(image, metas_for(image))
    assert len(model.window_boxes(640, 640)) == 9 and calls == [((336, 336), (336, 336))] * 10


def test_slide_mode_feeds_windows_at_the_input_size(build_tiny_model):
    model = build_tiny_model(test_cfg=dict(mode='slide', crop_size=(96, 96), stride=(64, 64), input_size=(64, 64)))
    calls = record_forwards(model)
    image = torch.zeros(1, 3, 160, 160)
    assert model.inference(image, metas_for(image)).shape == (1, 5, 160, 160)
    assert calls == [((64, 64), (96, 96))] * 4  # no global view in MMSeg's mode
