"""LoGoSegPredictor on a checkpoint trained once per session (tests/conftest.py: smoke_checkpoint)."""
import numpy as np
import pytest
import torch
from PIL import Image

from logoseg.apis import LoGoSegPredictor, predictor as predictor_module
from logoseg.utils.errors import LoGoSegUserError

from ..conftest import REPO, SMOKE_CLASSES, SMOKE_CONFIG

VOC_IMAGE = REPO / 'tests' / 'data' / 'voc2012_val' / 'JPEGImages' / 'voc_val_1.jpg'
VOCAB = ('wall', 'floor', 'sky', 'tree')


@pytest.fixture(scope='module')
def predictor(smoke_checkpoint):
    return LoGoSegPredictor(SMOKE_CONFIG, smoke_checkpoint)


@pytest.fixture(scope='module')
def small_image():
    """A real photo, downsized so that the tiny model segments it in a blink."""
    return np.asarray(Image.open(VOC_IMAGE).convert('RGB').resize((72, 72), Image.BILINEAR))


def test_segment_returns_labels_scores_prior_and_vocabulary(predictor, small_image):
    result = predictor.segment(small_image, VOCAB, scores=True)
    assert result.vocabulary == VOCAB and result.label_map.shape == (72, 72)
    assert result.scores.shape == (4, 72, 72) and ((result.scores >= 0) & (result.scores <= 1)).all()
    assert np.array_equal(result.label_map, result.scores.argmax(0))
    assert result.object_prior.shape == (4,) and (np.abs(result.object_prior) <= 1).all()
    fractions = result.class_fractions()
    assert list(fractions) == [name for name in VOCAB if name in fractions]  # vocabulary order
    assert sum(fractions.values()) == pytest.approx(1.0)
    assert len(result.palette) == 4 and np.array_equal(result.image, small_image)


def test_label_i_means_vocabulary_i_whatever_the_order(predictor, small_image):
    forward = predictor.segment(small_image, VOCAB, scores=True)
    backward = predictor.segment(small_image, VOCAB[::-1], scores=True)
    assert np.allclose(backward.scores, forward.scores[::-1], atol=1e-5)
    assert np.allclose(backward.object_prior, forward.object_prior[::-1], atol=1e-6)
    top2 = np.sort(forward.scores, axis=0)[-2:]
    clear = top2[1] - top2[0] > 1e-4  # pixels whose winner float noise cannot flip
    assert clear.mean() > 0.95
    names_forward = np.asarray(VOCAB)[forward.label_map]
    names_backward = np.asarray(VOCAB[::-1])[backward.label_map]
    assert np.array_equal(names_forward[clear], names_backward[clear])


def test_path_array_and_pil_inputs_agree(predictor, tmp_path, small_image):
    path = tmp_path / 'photo.png'
    Image.fromarray(small_image).save(path)
    from_path = predictor.segment(path, VOCAB).label_map
    assert np.array_equal(predictor.segment(str(path), VOCAB).label_map, from_path)
    assert np.array_equal(predictor.segment(small_image, VOCAB).label_map, from_path)
    assert np.array_equal(predictor.segment(Image.open(path), VOCAB).label_map, from_path)


def test_same_label_map_as_mmseg_inference_model(predictor, smoke_checkpoint, small_image):
    from mmseg.apis import inference_model, init_model
    model = init_model(str(SMOKE_CONFIG), str(smoke_checkpoint), device='cpu')
    assert model.dataset_meta['classes'] == SMOKE_CLASSES  # the checkpoint's training classes
    model.set_vocabulary(VOCAB)
    assert model.dataset_meta['classes'] == VOCAB
    mmseg_result = inference_model(model, np.ascontiguousarray(small_image[..., ::-1]))  # MMSeg takes BGR arrays
    assert np.array_equal(mmseg_result.pred_sem_seg.data[0].numpy(), predictor.segment(small_image, VOCAB).label_map)


def test_without_a_vocabulary_the_checkpoint_classes_are_used(smoke_checkpoint, small_image):
    result = LoGoSegPredictor(SMOKE_CONFIG, smoke_checkpoint).segment(small_image)
    assert result.vocabulary == SMOKE_CLASSES


def test_shipped_vocabulary_names_and_bad_vocabularies(predictor, small_image):
    assert len(predictor.segment(small_image[:16, :16], 'voc20').vocabulary) == 20
    with pytest.raises(LoGoSegUserError, match="'cat' is a single string: name a shipped vocabulary .*\\['cat'\\]"):
        predictor.segment(small_image, 'cat')
    with pytest.raises(LoGoSegUserError, match='empty vocabulary'):
        predictor.segment(small_image, [])
    with pytest.raises(LoGoSegUserError, match='duplicate class name'):
        predictor.segment(small_image, ['cat', 'dog', ' Cat'])
    with pytest.raises(LoGoSegUserError, match='blank name'):
        predictor.segment(small_image, ['cat', '  '])


@pytest.mark.parametrize('size', [(3, 5), (7, 30)])
def test_images_smaller_than_a_patch_are_segmented(predictor, small_image, size):
    result = predictor.segment(small_image[:size[0], :size[1]], VOCAB, scores=True)
    assert result.label_map.shape == size and result.scores.shape == (4, *size)


@pytest.mark.parametrize('mode', ['slide', 'slide_global'])
def test_slide_modes_cover_large_images(smoke_checkpoint, small_image, mode):
    large = np.tile(small_image, (2, 2, 1))[:90, :110]  # larger than the 64x64 window in both directions
    windowed = LoGoSegPredictor(SMOKE_CONFIG, smoke_checkpoint, mode=mode)
    assert windowed.model.test_cfg['crop_size'] == (64, 64) and windowed.model.test_cfg['stride'] == (42, 42)
    result = windowed.segment(large, VOCAB, scores=True)
    assert result.label_map.shape == (90, 110) and ((result.scores >= 0) & (result.scores <= 1)).all()
    assert np.array_equal(result.label_map, result.scores.argmax(0))


def test_second_predictor_reads_text_embeddings_from_disk(smoke_checkpoint, small_image, tmp_path, monkeypatch):
    calls = []
    first = LoGoSegPredictor(SMOKE_CONFIG, smoke_checkpoint, cache_dir=tmp_path)
    expected = first.segment(small_image, ['tree', 'grass', 'road'])
    second = LoGoSegPredictor(SMOKE_CONFIG, smoke_checkpoint, cache_dir=tmp_path)
    clip = second.model.text_encoder.clip
    original = clip.encode_text
    monkeypatch.setattr(clip, 'encode_text', lambda *a, **k: calls.append(1) or original(*a, **k))
    again = second.segment(small_image, ['tree', 'grass', 'road'])
    assert calls == [] and np.array_equal(again.label_map, expected.label_map)
    second.segment(small_image, ['tree', 'grass', 'river'])
    assert len(calls) == 1  # a new vocabulary does run the text tower


def test_missing_damaged_or_mismatched_checkpoints_are_refused(smoke_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(predictor_module, 'build_model', lambda cfg: pytest.fail('built a model'))
    with pytest.raises(LoGoSegUserError, match='checkpoint not found at .*missing.pth'):
        LoGoSegPredictor(SMOKE_CONFIG, tmp_path / 'missing.pth')
    with pytest.raises(LoGoSegUserError, match='config not found'):
        LoGoSegPredictor(tmp_path / 'nope.py', smoke_checkpoint)
    monkeypatch.undo()
    damaged = tmp_path / 'damaged.pth'
    damaged.write_bytes(smoke_checkpoint.read_bytes()[:5000])
    with pytest.raises(LoGoSegUserError, match='cannot read checkpoint .*damaged.pth'):
        LoGoSegPredictor(SMOKE_CONFIG, damaged)
    with pytest.raises(LoGoSegUserError, match=r'does not fit .*of another shape \(e\.g\. decode_head'):
        LoGoSegPredictor(SMOKE_CONFIG, smoke_checkpoint, cfg_options={'model.decode_head.guidance_dim': 16})
    with pytest.raises(LoGoSegUserError, match='does not fit .*weights missing'):
        LoGoSegPredictor(SMOKE_CONFIG, smoke_checkpoint, cfg_options={'model.decode_head.use_fusion': False})


def test_bad_device_and_mode_are_refused(smoke_checkpoint):
    with pytest.raises(LoGoSegUserError, match='unknown inference mode'):
        LoGoSegPredictor(SMOKE_CONFIG, smoke_checkpoint, mode='tiles')
    with pytest.raises(LoGoSegUserError, match='unknown device'):
        LoGoSegPredictor(SMOKE_CONFIG, smoke_checkpoint, device='gpu0')
    if not torch.cuda.is_available():
        with pytest.raises(LoGoSegUserError, match='CUDA is not available'):
            LoGoSegPredictor(SMOKE_CONFIG, smoke_checkpoint, device='cuda')


def test_label_map_matches_mmseg_when_the_protocol_resizes(smoke_checkpoint, small_image):
    """With a test pipeline that resizes (as every paper config does, to 640x640), the predictor builds the
    label map at the image's size class chunk by class chunk; it must equal MMSeg's resize-everything result."""
    from mmengine.config import Config
    from mmseg.apis import inference_model, init_model
    cfg = Config.fromfile(str(SMOKE_CONFIG))
    cfg.test_pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(40, 40), keep_ratio=False),
                         dict(type='PackSegInputs')]
    cfg.model.test_cfg = dict(mode='slide_global', crop_size=(32, 32), stride=(16, 16))
    image = np.ascontiguousarray(np.tile(small_image, (2, 2, 1))[:97, :131])
    vocabulary = ('wall', 'floor', 'sky', 'tree', 'grass', 'road', 'water')
    result = LoGoSegPredictor(cfg, smoke_checkpoint).segment(image, vocabulary, scores=True)
    model = init_model(cfg, str(smoke_checkpoint), device='cpu')
    model.set_vocabulary(vocabulary)
    expected = inference_model(model, np.ascontiguousarray(image[..., ::-1]))
    assert result.label_map.shape == (97, 131) and len(np.unique(result.label_map)) >= 2
    assert np.array_equal(result.label_map, expected.pred_sem_seg.data[0].numpy())
    assert np.allclose(result.scores, expected.seg_logits.data.numpy(), atol=1e-6)  # slide_global: probabilities
    assert np.array_equal(result.label_map, result.scores.argmax(0))


def test_scores_at_image_size_only_when_asked(predictor, small_image):
    assert predictor.segment(small_image, VOCAB).scores is None


def test_colours_follow_the_class_name_and_differ_for_classes_present(predictor, small_image):
    first = predictor.segment(small_image, ('wall', 'floor', 'sky', 'tree'))
    second = predictor.segment(small_image, ('tree', 'car', 'sky', 'person', 'wall', 'floor'))
    own = dict(zip(first.vocabulary, first.palette))
    assert dict(zip(second.vocabulary, second.palette))['sky'] == own['sky']
    assert {name: colour for name, colour in zip(second.vocabulary, second.palette) if name in own} == own
    present = [first.palette[i] for i in np.unique(first.label_map)]
    assert len(set(present)) == len(present)
