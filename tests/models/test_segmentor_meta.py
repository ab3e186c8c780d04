"""LoGoSeg under MMSeg's own inference helpers: dataset_meta follows the vocabulary; tiny images work."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmseg.apis import inference_model, show_result_pyplot
from mmseg.structures import SegDataSample

from ..conftest import SMOKE_CLASSES


def test_dataset_meta_follows_set_vocabulary(build_tiny_model):
    model = build_tiny_model()
    assert model.dataset_meta['classes'] == SMOKE_CLASSES and len(model.dataset_meta['palette']) == 5
    model.set_vocabulary(['road', 'car', 'tree'])
    meta = model.dataset_meta
    assert meta['classes'] == ('road', 'car', 'tree') and meta['prompt_classes'] == ('road', 'car', 'tree')
    assert len(meta['palette']) == 3 and len(set(meta['palette'])) == 3
    model.set_vocabulary(['cat', 'dog', 'sofa', 'wall'], background_index=2)
    assert model.dataset_meta['classes'] == ('cat', 'dog', 'background')  # the predicted label space
    assert model.dataset_meta['background_index'] == 2 and len(model.dataset_meta['palette']) == 3


def test_checkpoint_metadata_is_the_vocabulary_until_another_is_set(build_tiny_model):
    model = build_tiny_model()
    model.class_names = None
    palette = [(1, 2, 3), (4, 5, 6)]
    model.dataset_meta = dict(classes=('sky', 'sea'), palette=palette)  # what mmseg.apis.init_model assigns
    assert model.dataset_meta['classes'] == ('sky', 'sea') and model.dataset_meta['palette'] == palette
    model.set_vocabulary(['cat', 'dog', 'bird'])
    assert model.dataset_meta['classes'] == ('cat', 'dog', 'bird') and model.vocabulary == ('cat', 'dog', 'bird')
    # a vocabulary already set (the config's model.vocabulary) outranks a checkpoint loaded afterwards
    model.dataset_meta = dict(classes=('sky', 'sea'), palette=palette)
    assert model.dataset_meta['classes'] == ('cat', 'dog', 'bird') and model.vocabulary == ('cat', 'dog', 'bird')


def test_no_vocabulary_means_no_dataset_meta(build_tiny_model):
    model = build_tiny_model()
    model.class_names = None
    assert model.dataset_meta is None and getattr(model, 'dataset_meta', 'absent') is None


def test_mmseg_inference_model_and_show_result_pyplot_name_the_vocabulary(build_tiny_model, smoke_cfg, tmp_path):
    model = build_tiny_model().eval()
    model.cfg = smoke_cfg.copy()
    model.set_vocabulary(['wall', 'floor', 'sky', 'tree'])
    image = np.random.default_rng(0).integers(0, 256, (48, 56, 3), dtype=np.uint8)
    result = inference_model(model, image)
    labels = result.pred_sem_seg.data[0].numpy()
    assert result.seg_logits.data.shape == (4, 48, 56)
    drawn = show_result_pyplot(model, image, result, opacity=1.0, show=False, with_labels=False, draw_gt=False,
                               out_file=str(tmp_path / 'shown.png'))
    palette = np.array(model.dataset_meta['palette'])
    assert np.array_equal(drawn, palette[labels])  # every pixel in the colour of its class in the new vocabulary
    assert (tmp_path / 'shown.png').is_file()


@pytest.mark.parametrize('size', [(1, 1), (5, 7), (3, 40), (40, 7)])
def test_images_smaller_than_a_patch_are_padded_to_one(build_tiny_model, size):
    model = build_tiny_model().eval()
    patch = model.backbone.patch_stride
    height, width = size
    image = torch.rand(1, 3, height, width)
    sample = SegDataSample(metainfo=dict(img_shape=size, ori_shape=size, pad_shape=size))
    with torch.no_grad():
        [pred] = model.test_step(dict(inputs=[image[0] * 255], data_samples=[sample]))
        assert pred.pred_sem_seg.data.shape == (1, height, width)
        # the same as segmenting the image padded with the normalised mean, then cropping
        normalised = model.data_preprocessor(dict(inputs=[image[0] * 255]), False)['inputs']
        padded = F.pad(normalised, (0, max(patch - width, 0), 0, max(patch - height, 0)))
        meta = dict(img_shape=padded.shape[-2:], ori_shape=size)
        expected = model.encode_decode(padded, [meta])[..., :height, :width]
    assert torch.allclose(pred.seg_logits.data, expected[0], atol=1e-5)
