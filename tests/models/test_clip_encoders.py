import time

import open_clip
import pytest
import torch

from logoseg.models import clip_encoders
from logoseg.models.clip_encoders import (CLIPTextEncoder, ConvNeXtImageEncoder, ViTImageEncoder,
                                          build_image_encoder, create_clip, resolve_pretrained)
from logoseg.utils.errors import LoGoSegUserError


@pytest.fixture(scope='module')
def tiny_vit():
    torch.manual_seed(0)
    return open_clip.create_model('LoGoSeg-Tiny-ViT').eval()


def test_vit_features_match_open_clip_at_native_resolution(tiny_vit):
    encoder = ViTImageEncoder(tiny_vit.visual, mid_layer=1, guidance_layers=(2, 0))
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = encoder(images)
        ref = tiny_vit.visual.forward_intermediates(images, indices=4, output_fmt='NCHW')
    assert out['visual'].shape == (2, 64, 8, 8)
    # intermediates are the raw block outputs as patch grids
    assert torch.allclose(out['mid'], ref['image_intermediates'][1], atol=1e-5)
    assert torch.allclose(out['guidance'][0], ref['image_intermediates'][2], atol=1e-5)
    assert torch.allclose(out['guidance'][1], ref['image_intermediates'][0], atol=1e-5)
    # V: every patch token through the same ln_post and projection CLIP applies to its pooled token
    with torch.no_grad():
        x = ref['image_intermediates'][3].flatten(2).transpose(1, 2)
        dense = tiny_vit.visual.ln_post(x) @ tiny_vit.visual.proj
    assert torch.allclose(out['visual'].flatten(2).transpose(1, 2), dense, atol=1e-5)


def test_position_embeddings_are_resized_for_other_crops(tiny_vit):
    encoder = ViTImageEncoder(tiny_vit.visual, mid_layer=1, guidance_layers=(2, 0))
    assert torch.equal(encoder.position_embedding(8, 8), tiny_vit.visual.positional_embedding)
    resized = encoder.position_embedding(12, 6)
    assert resized.shape == (1 + 72, 64)
    assert torch.equal(resized[0], tiny_vit.visual.positional_embedding[0])  # class token untouched
    with torch.no_grad():
        out = encoder(torch.randn(1, 3, 96, 48))
    assert out['visual'].shape == (1, 64, 12, 6) and out['mid'].shape == (1, 64, 12, 6)


def test_convnext_dense_features_equal_the_pooled_embedding_on_a_one_cell_map():
    torch.manual_seed(0)
    model = open_clip.create_model('LoGoSeg-Tiny-ConvNeXt').eval()
    encoder = build_image_encoder(model.visual, mid_layer=2, guidance_layers=(2, 1))
    assert isinstance(encoder, ConvNeXtImageEncoder)
    images = torch.randn(2, 3, 32, 32)  # stride 32: one cell, so pooling is the identity
    with torch.no_grad():
        out = encoder(images)
        pooled = model.visual(images)
    assert out['visual'].shape == (2, 64, 1, 1)
    assert torch.allclose(out['visual'][:, :, 0, 0], pooled, atol=1e-5)
    with torch.no_grad():
        out = encoder(torch.randn(1, 3, 128, 96))
    assert out['visual'].shape[-2:] == (4, 3)
    assert out['guidance'][0].shape[-2:] == (8, 6) and out['guidance'][1].shape[-2:] == (16, 12)
    assert encoder.guidance_channels == (160, 80) and encoder.mid_channels == 160


def test_layer_choices_are_validated(tiny_vit):
    with pytest.raises(LoGoSegUserError, match='out of range'):
        ViTImageEncoder(tiny_vit.visual, mid_layer=9, guidance_layers=(2, 0))
    with pytest.raises(LoGoSegUserError, match='two entries'):
        build_image_encoder(tiny_vit.visual, mid_layer=1, guidance_layers=(2,))


def test_text_encoder_prompts_first_synonym_with_every_template(tiny_vit):
    encoder = CLIPTextEncoder(tiny_vit, open_clip.get_tokenizer('LoGoSeg-Tiny-ViT'),
                              templates=('a photo of a {}.', 'a {} in the scene'))
    assert encoder.prompts(['person, individual', 'bed ']) == [
        'a photo of a person.', 'a person in the scene', 'a photo of a bed.', 'a bed in the scene']
    emb = encoder(['person, individual', 'bed ', 'sky'])
    assert emb.shape == (3, 2, 64) and not emb.requires_grad
    assert torch.allclose(emb.norm(dim=-1), torch.ones(3, 2), atol=1e-5)
    tokens = open_clip.get_tokenizer('LoGoSeg-Tiny-ViT')(['a bed in the scene'])
    with torch.no_grad():
        direct = tiny_vit.encode_text(tokens, normalize=True)
    assert torch.allclose(emb[1, 1], direct[0], atol=1e-6)


def test_text_embeddings_are_cached_in_full_precision_under_autocast(tiny_vit):
    encoder = CLIPTextEncoder(tiny_vit, open_clip.get_tokenizer('LoGoSeg-Tiny-ViT'))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        first = encoder(['cat', 'dog'])
    assert first.dtype == torch.float32
    fresh = CLIPTextEncoder(tiny_vit, open_clip.get_tokenizer('LoGoSeg-Tiny-ViT'))(['cat', 'dog'])
    assert torch.allclose(first, fresh, atol=1e-6)


def test_text_embeddings_are_cached_per_vocabulary_and_invalidated_by_new_weights(tiny_vit, monkeypatch):
    encoder = CLIPTextEncoder(tiny_vit, open_clip.get_tokenizer('LoGoSeg-Tiny-ViT'))
    calls = []
    original = tiny_vit.encode_text
    monkeypatch.setattr(tiny_vit, 'encode_text', lambda *a, **k: calls.append(1) or original(*a, **k))
    first = encoder(['cat', 'dog'])
    assert encoder(['cat', 'dog']) is first and len(calls) == 1
    encoder(['dog', 'cat'])
    assert len(calls) == 2
    state = {k: v + 0.1 for k, v in encoder.state_dict().items()}
    encoder.load_state_dict(state)
    assert not torch.allclose(encoder(['cat', 'dog']), first) and len(calls) == 3


def test_text_encoder_rejects_bad_vocabularies_and_templates(tiny_vit):
    tokenizer = open_clip.get_tokenizer('LoGoSeg-Tiny-ViT')
    encoder = CLIPTextEncoder(tiny_vit, tokenizer)
    with pytest.raises(LoGoSegUserError, match='empty vocabulary'):
        encoder([])
    with pytest.raises(LoGoSegUserError, match='duplicate'):
        encoder(['cat', 'cat '])
    with pytest.raises(LoGoSegUserError, match='blank name'):
        encoder(['cat', ' '])
    with pytest.raises(LoGoSegUserError, match='exactly one'):
        CLIPTextEncoder(tiny_vit, tokenizer, templates=('a photo',))


def test_missing_local_checkpoint_and_unknown_tag_fail_in_one_line(tmp_path):
    with pytest.raises(LoGoSegUserError, match='CLIP checkpoint not found at') as err:
        resolve_pretrained('ViT-B-16', str(tmp_path / 'missing.bin'))
    assert '\n' not in str(err.value)
    with pytest.raises(LoGoSegUserError, match='valid tags: .*openai'):
        resolve_pretrained('ViT-B-16', 'not-a-tag')
    with pytest.raises(LoGoSegUserError, match='unknown CLIP model'):
        create_clip('ViT-Q-99')
    weights = tmp_path / 'weights.bin'
    weights.write_bytes(b'x')
    assert resolve_pretrained('ViT-B-16', str(weights)) == str(weights)
    assert resolve_pretrained('ViT-B-16', None) is None


def test_uncached_tag_offline_fails_fast_without_network(monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '0')
    monkeypatch.setattr(clip_encoders, '_host_reachable', lambda host, timeout=3.0: False)
    monkeypatch.setattr(clip_encoders, '_cached_weights', lambda cfg, cache_dir: None)
    start = time.monotonic()
    with pytest.raises(LoGoSegUserError, match='not cached and huggingface.co is unreachable') as err:
        create_clip('ViT-B-16-quickgelu', pretrained='openai')
    assert time.monotonic() - start < 5 and 'model.clip.pretrained' in str(err.value)


def test_cached_tag_is_passed_to_open_clip(monkeypatch):
    monkeypatch.setattr(clip_encoders, '_cached_weights', lambda cfg, cache_dir: '/cache/open_clip_model.bin')
    assert resolve_pretrained('ViT-B-16-quickgelu', 'openai') == 'openai'
    assert resolve_pretrained('convnext_base_w_320', 'laion_aesthetic_s13b_b82k_augreg') == \
        'laion_aesthetic_s13b_b82k_augreg'


def test_openai_weights_require_the_quickgelu_architecture(monkeypatch):
    monkeypatch.setattr(clip_encoders, '_cached_weights', lambda cfg, cache_dir: '/cache/open_clip_model.bin')
    for model_name in ('ViT-B-16', 'ViT-L-14'):
        with pytest.raises(LoGoSegUserError, match=f'use model_name={model_name}-quickgelu'):
            resolve_pretrained(model_name, 'openai')
    torch.manual_seed(0)
    activation = open_clip.create_model('ViT-B-16-quickgelu').visual.transformer.resblocks[0].mlp.gelu
    assert type(activation).__name__ == 'QuickGELU'


def test_real_offline_probe_answers_within_its_timeout():
    start = time.monotonic()
    clip_encoders._host_reachable('huggingface.invalid', timeout=1.0)
    assert time.monotonic() - start < 2.5
