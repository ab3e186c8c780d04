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


@pytest.mark.parametrize('class_chunk, batched', [
    (32, False),  # the 5 classes in one pass, one view at a time (CPU)
    (2, False),  # passes of 2, 2 and 1 classes
    (32, True),  # the 5 views in one batch (GPU)
])
def test_slide_global_is_catsegs_sliding_window_inference(build_tiny_model, class_chunk, batched):
    # CAT-Seg's numbers scaled down by 4 for the tiny model: 160 image, 96 windows, stride 64, 64 CLIP input
    model = build_tiny_model(test_cfg=dict(mode='slide_global', crop_size=(96, 96), stride=(64, 64),
                                           input_size=(64, 64))).eval()
    model.CLASS_CHUNK = class_chunk
    model.BATCH_VIEWS_ON_CPU = batched
    batches = []
    model.backbone.register_forward_pre_hook(lambda module, args: batches.append(len(args[0])))
    image = torch.rand(1, 3, 160, 160, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = model.inference(image, metas_for(image))
        reference = catseg_reference(model, image, kernel=96, stride=64, clip_resolution=(64, 64))
    assert ours.shape == (1, 5, 160, 160)
    assert batches[:-5] == ([5] if batched else [1] * 5)  # (the reference's 5 forwards come last)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('class_chunk', [32, 3])
def test_slide_without_input_size_is_mmsegs_slide_inference(build_tiny_model, class_chunk):
    model = build_tiny_model(test_cfg=dict(mode='slide', crop_size=(64, 64), stride=(40, 40))).eval()
    model.CLASS_CHUNK = class_chunk
    images = torch.rand(2, 3, 96, 112, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model.inference(images, metas_for(images))
        mmseg = EncoderDecoder.slide_inference(model, images, metas_for(images))
    torch.testing.assert_close(ours, mmseg, atol=1e-6, rtol=1e-6)


def record_forwards(model):
    """Record each network forward as (input size, size its logits are resized back to)."""
    inputs, resized = [], []

    def record_inputs(module, args):  # the views of one size arrive as one batch
        inputs.extend([tuple(args[0].shape[-2:])] * len(args[0]))

    model.backbone.register_forward_pre_hook(record_inputs)
    original = model.logits_to_view

    def logits_to_view(logits, covered, size):
        resized.append(tuple(size))
        return original(logits, covered, size)

    model.logits_to_view = logits_to_view
    return lambda: list(zip(inputs, resized))


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
    with torch.no_grad():
        scores = model.inference(image, metas_for(image))
    assert scores.shape == (1, 5, 640, 640)
    # 4 windows + 1 global view, each fed at the backbone's input and its scores resized back to 384
    assert calls() == [((input_size, input_size), (384, 384))] * 5


def test_the_earlier_vitl_scheme_stays_reachable(build_tiny_model):
    model = build_tiny_model(test_cfg=dict(mode='slide_global', crop_size=(336, 336), stride=(224, 224),
                                           input_size=(336, 336)))
    calls = record_forwards(model)
    image = torch.zeros(1, 3, 640, 640)
    with torch.no_grad():
        model.inference(image, metas_for(image))
    assert len(model.window_boxes(640, 640)) == 9 and calls() == [((336, 336), (336, 336))] * 10


def test_slide_mode_feeds_windows_at_the_input_size(build_tiny_model):
    model = build_tiny_model(test_cfg=dict(mode='slide', crop_size=(96, 96), stride=(64, 64), input_size=(64, 64)))
    calls = record_forwards(model)
    image = torch.zeros(1, 3, 160, 160)
    with torch.no_grad():
        assert model.inference(image, metas_for(image)).shape == (1, 5, 160, 160)
    assert calls() == [((64, 64), (96, 96))] * 4  # no global view in MMSeg's mode


def prior_top_k_model(build_tiny_model, top_k):
    return build_tiny_model(test_cfg=dict(mode='slide_global', crop_size=(96, 96), stride=(64, 64),
                                          input_size=(64, 64), prior_top_k=top_k)).eval()


def test_prior_top_k_scores_only_the_global_views_top_classes_and_leaves_their_scores_unchanged(build_tiny_model):
    image = torch.rand(2, 3, 160, 160, generator=torch.Generator().manual_seed(2))
    every = prior_top_k_model(build_tiny_model, None)
    top2 = prior_top_k_model(build_tiny_model, 2)
    every_class = prior_top_k_model(build_tiny_model, 5)  # k >= N keeps every class
    with torch.no_grad():
        full = every.inference(image, metas_for(image))
        dropped = top2.inference(image, metas_for(image))
        assert torch.equal(every_class.inference(image, metas_for(image)), full)
        # eq 1 on the global view: the image resized to the window, fed at the input size
        view = F.interpolate(F.interpolate(image, size=(96, 96), mode='bilinear', align_corners=False),
                             size=(64, 64), mode='bilinear', align_corners=False)
        feats = top2.extract_feat(view)
        visual = F.normalize(feats['visual'].flatten(2), dim=1).mean(2)
        centres = F.normalize(feats['text'].mean(1), dim=-1)
        prior = visual @ centres.T  # (2, 5)
    for b in range(2):
        kept = set(prior[b].topk(2).indices.tolist())
        for n in range(5):
            if n in kept:
                # one rounding apart at most: the resize kernel vectorises over however many classes it gets
                torch.testing.assert_close(dropped[b, n], full[b, n], atol=1e-6, rtol=1e-6)
            else:
                assert (dropped[b, n] == 0).all()
    assert (full > 0).all()  # so a dropped class never wins a pixel


@pytest.mark.parametrize('test_cfg', [
    dict(mode='slide_global', crop_size=(96, 96), stride=(64, 64), input_size=(64, 64)),
    dict(mode='slide_global', crop_size=(96, 96), stride=(64, 64), prior_top_k=2),
    dict(mode='slide', crop_size=(96, 96), stride=(64, 64)),
])
def test_window_protocols_are_differentiable_like_mmsegs(build_tiny_model, test_cfg):
    # attribution maps and test-time adaptation take gradients of the scores, as MMSeg's slide_inference allows
    model = build_tiny_model(test_cfg=test_cfg).eval()
    image = torch.rand(1, 3, 160, 160, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = model.inference(image, metas_for(image))
    image.requires_grad_(True)
    scores = model.inference(image, metas_for(image))
    # (without autograd, attention takes PyTorch's fused inference path: a few roundings apart)
    torch.testing.assert_close(scores, expected, atol=1e-5, rtol=1e-5)
    best = int(scores[0, :, 10, 10].argmax())  # a class top-k keeps
    scores[0, best, 10, 10].backward()
    assert image.grad[..., 10, 10].abs().sum() > 0


@pytest.mark.parametrize('test_cfg, message', [
    (dict(mode='slide_global', crop_size=(96, 96), stride=(64, 64), prior_top_k=0), 'prior_top_k=0'),
    (dict(mode='whole', prior_top_k=10), "needs mode='slide_global'"),
])
def test_prior_top_k_errors_are_one_line(build_tiny_model, test_cfg, message):
    from logoseg.utils.errors import LoGoSegUserError
    with pytest.raises(LoGoSegUserError, match=message) as err:
        build_tiny_model(test_cfg=test_cfg)
    assert '\n' not in str(err.value)
