"""The on-disk text-embedding cache: hit on a second run, missed on any change, never trusting a bad file."""
import logging

import open_clip
import pytest
import torch

from logoseg.models.clip_encoders import CLIPTextEncoder
from logoseg.utils.text_cache import CACHE_ENV, TextEmbeddingCache, default_cache_dir, weights_fingerprint

MODEL = 'LoGoSeg-Tiny-ViT'
VOCAB = ['cat', 'dog', 'grass']


def tiny_clip(seed=0):
    torch.manual_seed(seed)
    model = open_clip.create_model(MODEL).eval()
    model.visual = None
    return model


class Counting:
    """A text tower whose encode_text calls are counted."""

    def __init__(self, clip, monkeypatch):
        self.calls = 0
        original = clip.encode_text

        def encode_text(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(clip, 'encode_text', encode_text)


def encoder(clip, cache_dir, templates=('a photo of a {}',), model_name=MODEL):
    return CLIPTextEncoder(clip, open_clip.get_tokenizer(MODEL), templates, model_name=model_name,
                           cache_dir=cache_dir)


def entries(cache_dir):
    return sorted((cache_dir / 'text_embeddings').glob('*.pt'))


def test_second_run_reads_the_disk_cache_instead_of_the_text_tower(tmp_path, monkeypatch):
    first_clip, second_clip = tiny_clip(), tiny_clip()
    first_count, second_count = Counting(first_clip, monkeypatch), Counting(second_clip, monkeypatch)
    computed = encoder(first_clip, tmp_path)(VOCAB)
    assert first_count.calls == 1 and len(entries(tmp_path)) == 1
    cached = encoder(second_clip, tmp_path)(VOCAB)  # a new process would start like this
    assert second_count.calls == 0
    assert torch.equal(cached, computed) and cached.dtype == torch.float32


@pytest.mark.parametrize('change', ['order', 'names', 'templates', 'weights', 'architecture'])
def test_any_change_of_model_weights_templates_or_vocabulary_misses(tmp_path, monkeypatch, change):
    encoder(tiny_clip(), tmp_path)(VOCAB)
    clip = tiny_clip(seed=1) if change == 'weights' else tiny_clip()
    count = Counting(clip, monkeypatch)
    vocab = {'order': VOCAB[::-1], 'names': VOCAB[:2] + ['tree']}.get(change, VOCAB)
    templates = ('a drawing of a {}',) if change == 'templates' else ('a photo of a {}',)
    name = 'LoGoSeg-Tiny-ViT-quickgelu' if change == 'architecture' else MODEL
    encoder(clip, tmp_path, templates, model_name=name)(vocab)
    assert count.calls == 1 and len(entries(tmp_path)) == 2


def corrupt_truncated(path):
    path.write_bytes(path.read_bytes()[:100])


def corrupt_values(path):
    entry = torch.load(path, weights_only=True)
    entry['embeddings'][0, 0, 0] += 1.0  # checksum no longer matches
    torch.save(entry, path)


def corrupt_identity(path):
    entry = torch.load(path, weights_only=True)
    entry['identity'] = dict(entry['identity'], prompts=['a photo of a bird'] * 3)  # another vocabulary's entry
    torch.save(entry, path)


def corrupt_shape(path):
    entry = torch.load(path, weights_only=True)
    entry['embeddings'] = entry['embeddings'][:2]
    torch.save(entry, path)


@pytest.mark.parametrize('corrupt', [corrupt_truncated, corrupt_values, corrupt_identity, corrupt_shape])
def test_corrupt_or_stale_entries_are_recomputed_and_replaced(tmp_path, monkeypatch, caplog, corrupt):
    expected = encoder(tiny_clip(), tmp_path)(VOCAB)
    [path] = entries(tmp_path)
    corrupt(path)
    clip = tiny_clip()
    count = Counting(clip, monkeypatch)
    with caplog.at_level(logging.WARNING):
        again = encoder(clip, tmp_path)(VOCAB)
    assert count.calls == 1 and torch.equal(again, expected)
    # the rewritten entry is used again by the next run
    clip = tiny_clip()
    count = Counting(clip, monkeypatch)
    assert torch.equal(encoder(clip, tmp_path)(VOCAB), expected) and count.calls == 0


def test_writes_are_atomic_and_an_unwritable_folder_only_costs_the_cache(tmp_path, monkeypatch):
    encoder(tiny_clip(), tmp_path)(VOCAB)
    assert [p.name for p in (tmp_path / 'text_embeddings').iterdir()] == [entries(tmp_path)[0].name]  # no temporaries

    blocked = tmp_path / 'blocked'
    blocked.write_text('a file where the cache folder should be')
    clip = tiny_clip()
    count = Counting(clip, monkeypatch)
    assert encoder(clip, blocked)(VOCAB).shape == (3, 1, 64) and count.calls == 1
    assert blocked.is_file()


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    def interrupted(obj, handle, *args, **kwargs):
        handle.write(b'half')
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, 'save', interrupted)
    with pytest.raises(KeyboardInterrupt):
        encoder(tiny_clip(), tmp_path)(VOCAB)
    assert list((tmp_path / 'text_embeddings').iterdir()) == []


def test_without_a_model_name_embeddings_stay_in_memory(tmp_path):
    encoder(tiny_clip(), tmp_path, model_name=None)(VOCAB)
    assert not (tmp_path / 'text_embeddings').exists()


def test_the_cache_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / 'mine'))
    assert default_cache_dir() == tmp_path / 'mine'
    assert TextEmbeddingCache().folder == tmp_path / 'mine' / 'text_embeddings'
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
    assert default_cache_dir() == tmp_path / 'xdg' / 'logoseg'
    monkeypatch.delenv('XDG_CACHE_HOME')
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    assert default_cache_dir() == tmp_path / 'home' / '.cache' / 'logoseg'


def test_weights_fingerprint_sees_every_value_and_dtype():
    clip = tiny_clip()
    before = weights_fingerprint(clip)
    assert weights_fingerprint(tiny_clip()) == before
    with torch.no_grad():
        clip.positional_embedding[3, 5] += 1e-6
    assert weights_fingerprint(clip) != before
    assert weights_fingerprint(tiny_clip().half()) != before
