"""Behaviour of the assembled LoGoSeg segmentor (tiny random-init CLIP towers)."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from logoseg.utils.errors import LoGoSegUserError
from logoseg.utils.vocab import load_vocabulary

from ..conftest import SMOKE_CLASSES


def batch(size=64, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, size, size, generator=g)
    samples = []
    for i in range(n):
        sample = SegDataSample(metainfo=dict(img_shape=(size, size), pad_shape=(size, size),
                                             ori_shape=(size, size)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 5, (1, size, size), generator=g))
        samples.append(sample)
    return images, samples


def test_modes_loss_predict_tensor(build_tiny_model):
    model = build_tiny_model()
    images, samples = batch()
    losses = model(images, samples, mode='loss')
    assert set(losses) == {'decode.loss_bce'} and losses['decode.loss_bce'].requires_grad
    model.eval()
    with torch.no_grad():
        logits = model(images, samples, mode='tensor')
        preds = model(images, samples, mode='predict')
    assert logits.shape == (2, 5, 32, 32)  # 1/4 of the input before eq 12's resize
    assert preds[0].seg_logits.data.shape == (5, 64, 64)
    assert torch.equal(preds[0].pred_sem_seg.data[0], preds[0].seg_logits.data.argmax(0))


def test_no_gradient_reaches_the_text_encoder(build_tiny_model):
    model = build_tiny_model()
    images, samples = batch()
    model(images, samples, mode='loss')['decode.loss_bce'].backward()
    assert all(p.grad is None and not p.requires_grad for p in model.text_encoder.parameters())
    assert all(p.grad is not None for p in model.backbone.parameters() if p.requires_grad)
    model.train()
    assert not model.text_encoder.training


def test_image_encoder_lr_is_scaled_by_0_01_and_nothing_else(build_tiny_model, smoke_cfg):
    model = build_tiny_model()
    wrapper = build_optim_wrapper(model, smoke_cfg.optim_wrapper)
    base_lr = smoke_cfg.optim_wrapper.optimizer.lr
    lr_of = {id(p): group['lr'] for group in wrapper.optimizer.param_groups for p in group['params']}
    for name, param in model.named_parameters():
        if name.startswith('text_encoder.'):
            assert id(param) not in lr_of, name  # frozen: not optimised at all
        elif name.startswith('backbone.'):
            assert lr_of[id(param)] == pytest.approx(base_lr * 0.01), name
        else:
            assert lr_of[id(param)] == pytest.approx(base_lr), name


def test_vocabulary_size_can_change_between_calls(build_tiny_model):
    model = build_tiny_model().eval()
    images, samples = batch()
    for names in (SMOKE_CLASSES, ('cat', 'dog'), tuple(f'class {i}' for i in range(23))):
        model.set_vocabulary(names)
        with torch.no_grad():
            assert model(images, samples, mode='tensor').shape[1] == len(names)


def test_permuting_the_vocabulary_permutes_output_channels(build_tiny_model):
    model = build_tiny_model().eval()
    images, samples = batch()
    names = SMOKE_CLASSES + ('road', 'tree')
    perm = [3, 0, 6, 1, 5, 2, 4]
    with torch.no_grad():
        model.set_vocabulary(names)
        logits = model(images, samples, mode='tensor')
        model.set_vocabulary([names[i] for i in perm])
        permuted = model(images, samples, mode='tensor')
    assert torch.allclose(permuted, logits[:, perm], atol=1e-5)


def test_prediction_does_not_depend_on_the_rest_of_the_batch(build_tiny_model):
    model = build_tiny_model().eval()
    images, samples = batch(n=3)
    with torch.no_grad():
        together = model(images, samples, mode='tensor')
        alone = model(images[1:2], samples[1:2], mode='tensor')
    assert torch.allclose(together[1:2], alone, atol=1e-5)


def test_lambda_zero_is_exactly_no_object_prior(build_tiny_model):
    with_zero = build_tiny_model(head=dict(prior_lambda=0.0)).eval()
    without = build_tiny_model(head=dict(use_object_prior=False)).eval()
    without.load_state_dict(with_zero.state_dict())  # the same parameters: no kappa, whose gradient would be 0
    images, samples = batch()
    with torch.no_grad():
        assert torch.allclose(with_zero(images, samples, mode='tensor'), without(images, samples, mode='tensor'))
        full = build_tiny_model(head=dict(prior_lambda=1.0)).eval()
        missing, unexpected = full.load_state_dict(with_zero.state_dict(), strict=False)
        assert missing == ['decode_head.prior_logit_scale'] and not unexpected
        assert not torch.allclose(full(images, samples, mode='tensor'), without(images, samples, mode='tensor'))


@pytest.mark.parametrize('switch, absent', [
    (dict(use_region_alignment=False), 'decode_head.alignment.'),
    (dict(use_fusion=False), 'decode_head.fusion.'),
    (dict(use_dir_attn=False), 'dir_attn'),
    (dict(use_global_context=False), 'global_context'),
    (dict(use_object_prior=False), 'decode_head.prior_logit_scale'),
])
def test_every_ablation_switch_removes_its_module_and_still_trains(build_tiny_model, switch, absent):
    full = {name for name, _ in build_tiny_model().named_parameters()}
    model = build_tiny_model(head=switch)
    names = {name for name, _ in model.named_parameters()}
    assert any(absent in n for n in full) and not any(absent in n for n in names)
    images, samples = batch()
    loss = model(images, samples, mode='loss')['decode.loss_bce']
    loss.backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused  # DDP without find_unused_parameters needs every parameter used


@pytest.mark.parametrize('depth', [1, 3])
def test_fusion_depth_and_region_grid_are_configurable(build_tiny_model, depth):
    model = build_tiny_model(head=dict(fusion_depth=depth, region_grid=3)).eval()
    images, samples = batch()
    with torch.no_grad():
        assert model(images, samples, mode='tensor').shape == (2, 5, 32, 32)


def test_slide_global_with_one_window_averages_window_and_global_view(build_tiny_model):
    model = build_tiny_model().eval()
    images, samples = batch()
    metas = [s.metainfo for s in samples]
    with torch.no_grad():
        whole = model.whole_inference(images, metas)
        model.test_cfg = dict(mode='slide_global', crop_size=(64, 64), stride=(32, 32))
        slide = model.inference(images, metas)
    # one window covering the image, and a global view that is the image itself: the same probabilities
    assert torch.allclose(slide, whole.sigmoid(), atol=1e-5)


def test_slide_global_covers_larger_images_and_mixes_in_the_global_view(build_tiny_model):
    model = build_tiny_model().eval()
    images, samples = batch(size=96)
    metas = [dict(s.metainfo, img_shape=(96, 96), pad_shape=(96, 96)) for s in samples]
    model.test_cfg = dict(mode='slide_global', crop_size=(64, 64), stride=(32, 32))
    batches = []
    model.backbone.register_forward_pre_hook(lambda module, args: batches.append(tuple(args[0].shape)))
    with torch.no_grad():
        logits = model.inference(images, metas)
    assert logits.shape == (2, 5, 96, 96) and ((logits >= 0) & (logits <= 1)).all()  # averaged scores
    assert batches == [(2, 3, 64, 64)] * 5  # 2x2 windows + one resized global view (on a GPU: one batch of 10)


def test_unknown_inference_mode_and_missing_vocabulary_are_clear_errors(build_tiny_model, smoke_cfg):
    with pytest.raises(LoGoSegUserError, match='test_cfg.mode'):
        build_tiny_model(test_cfg=dict(mode='sliding'))
    model = build_tiny_model()
    model.class_names = None
    with pytest.raises(LoGoSegUserError, match='no vocabulary'):
        model.vocabulary
    with pytest.raises(LoGoSegUserError, match='empty vocabulary'):
        model.set_vocabulary([])
    with pytest.raises(LoGoSegUserError, match='duplicate class name'):
        model.set_vocabulary(['cat', 'dog', 'Cat'])


def test_vocabulary_from_checkpoint_metadata(build_tiny_model):
    model = build_tiny_model()
    model.class_names = None
    model.dataset_meta = dict(classes=('a', 'b', 'background'), prompt_classes=('a', 'b', 'c', 'd'),
                              background_index=2)
    assert model.vocabulary == ('a', 'b', 'c', 'd') and model.background_index == 2


def test_predict_applies_background_merge(build_tiny_model):
    model = build_tiny_model().eval()
    model.set_vocabulary(('a', 'b', 'c', 'd', 'e', 'f'), background_index=2)
    images, samples = batch()
    with torch.no_grad():
        preds = model(images, samples, mode='predict')
    for p in preds:
        assert p.pred_sem_seg.data.max() <= 2
        assert torch.equal(p.pred_sem_seg.data[0], p.seg_logits.data.argmax(0).clamp(max=2))


def test_mmseg_slide_mode_and_images_smaller_than_the_region_grid(build_tiny_model):
    model = build_tiny_model(test_cfg=dict(mode='slide', crop_size=(64, 64), stride=(48, 48))).eval()
    images, samples = batch(size=96)
    metas = [dict(s.metainfo, img_shape=(96, 96), pad_shape=(96, 96)) for s in samples]
    with torch.no_grad():
        assert model.inference(images, metas).shape == (2, 5, 96, 96)
        small, small_samples = batch(size=16)  # a 2x2 patch grid, smaller than the 4x4 region grid
        assert model(small, small_samples, mode='tensor').shape == (2, 5, 8, 8)


def test_a_one_class_vocabulary_labels_every_pixel_with_that_class(build_tiny_model):
    model = build_tiny_model().eval()
    model.set_vocabulary(['sky'])
    images, samples = batch()
    with torch.no_grad():
        preds = model(images, samples, mode='predict')
    assert all(p.pred_sem_seg.data.dtype == torch.long and not p.pred_sem_seg.data.any() for p in preds)


@pytest.mark.parametrize('head', [dict(), dict(prior_lambda=0.0), dict(prior_lambda='learnable'),
                                  dict(use_region_alignment=False), dict(use_fusion=False)])
def test_every_trainable_parameter_has_a_gradient_above_rounding(build_tiny_model, head):
    """No dead parameter (a gradient zero by construction): in float64 such a gradient shows ~1e-16 of noise."""
    model = build_tiny_model(head=head).double()
    images, samples = batch()
    model(images.double(), samples, mode='loss')['decode.loss_bce'].backward()
    dead = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or p.grad.abs().max() < 1e-8)]
    assert not dead


def test_a_bare_string_vocabulary_is_a_shipped_name_or_an_error(build_tiny_model, smoke_cfg):
    cfg = dict(smoke_cfg.model.to_dict(), vocabulary='ade150')
    assert MODELS.build(cfg).vocabulary == load_vocabulary('ade150')
    model = build_tiny_model()
    with pytest.raises(LoGoSegUserError, match="vocabulary 'sky' is a single string"):
        model.set_vocabulary('sky')
    model.set_vocabulary('voc20')
    assert len(model.vocabulary) == 20 and model.vocabulary[0] == 'aeroplane'
    with pytest.raises(LoGoSegUserError, match="classes 0 'sky' and 2 'sky, blue' are both prompted as 'sky'"):
        model.set_vocabulary(['sky', 'grass', 'sky, blue'])
