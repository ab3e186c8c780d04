"""The generated stand-in of a user's dataset: the documented raw layout in every format, and its declared
preparation end to end (the manifest's counts against the scenes drawn)."""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import yaml
from PIL import Image, ImageOps

from logoseg.datasets.smoke import SMOKE_CLASSES, SPLIT_SEEDS
from logoseg.tools.prepare import common, declared, smoke
from logoseg.tools.prepare import standin_dataset as standin
from logoseg.utils.vocab import first_synonym


@pytest.fixture(scope='module')
def repo(tmp_path_factory):
    """A repository root holding datasets/standin, generated once."""
    root = tmp_path_factory.mktemp('repo')
    assert standin.generate(root / standin.DECLARATION['raw']) is True
    return root


def files(folder):
    return sorted(p for p in folder.rglob('*') if p.is_file())


def test_the_raw_layout_holds_every_documented_format(repo):
    raw = repo / 'datasets' / 'standin'
    assert (raw / 'classes.txt').read_text().splitlines() == list(standin.CLASS_LINES)
    assert [first_synonym(line) for line in standin.CLASS_LINES] == list(SMOKE_CLASSES)
    for split, count in standin.COUNTS.items():
        assert len(files(raw / 'images' / split)) == len(files(raw / 'masks' / split)) == count
    train = files(raw / 'images' / 'train')
    assert sum(p.parent.name == 'more' for p in train) == standin.COUNTS['train'] // 2
    modes = Counter((p.suffix, Image.open(p).mode) for p in train)
    assert modes[('.png', 'L')] == modes[('.png', 'RGBA')] == modes[('.png', 'I;16')] == 1
    assert modes[('.png', 'RGB')] >= 3 and modes[('.jpg', 'RGB')] >= 12
    assert [p.name for p in train if Image.open(p).getexif().get(0x0112) == 6] == ['train_003.jpg']
    masks = {split: [Image.open(p) for p in files(raw / 'masks' / split)] for split in standin.COUNTS}
    assert {m.mode for m in masks['train']} == {'P'} and {m.mode for m in masks['val']} == {'I;16'}
    assert {m.mode for m in masks['test']} == {'L'}
    assert {v for m in masks['val'] for v in np.unique(m).tolist()} <= {0, 1, 2, 3, 4, 65535}
    assert {v for m in masks['test'] for v in np.unique(m).tolist()} == {0, 1, 2, 3, 4, 5}  # 0: ignored
    assert not set(standin.SEEDS.values()) & {*SPLIT_SEEDS.values(), *(s.seed for s in smoke.SCENE_SETS)}


def test_the_exif_rotated_image_displays_upright_over_its_mask(repo):
    raw = repo / 'datasets' / 'standin'
    stored = Image.open(raw / 'images' / 'train' / 'train_003.jpg')
    mask = Image.open(raw / 'masks' / 'train' / 'train_003.png')
    upright = ImageOps.exif_transpose(stored)
    assert stored.size == mask.size[::-1] != mask.size and upright.size == mask.size
    image, label = standin.scene('train', 3)
    np.testing.assert_array_equal(np.asarray(mask), label)
    assert np.abs(np.asarray(upright).astype(int) - image).mean() < 8  # JPEG error only


def test_generation_is_deterministic_and_skipped_when_up_to_date(repo, tmp_path):
    raw = repo / 'datasets' / 'standin'
    marker = json.loads((raw / common.MARKER).read_text())
    assert standin.generate(raw) is False
    assert standin.generate(tmp_path / 'again') is True
    assert json.loads((tmp_path / 'again' / common.MARKER).read_text())['content_sha256'] == marker['content_sha256']


def test_declared_preparation_of_the_standin(repo):
    """Every split prepared (two workers): counts against the scenes as drawn, labels as trainIds."""
    decl = declared.parse_declaration('standin', standin.DECLARATION, repo)
    out = repo / 'prepared' / 'datasets' / 'standin'
    assert declared.prepare(decl, out, workers=2) is True
    manifest = json.loads((out / 'manifest.json').read_text())
    assert manifest['classes'] == list(standin.CLASS_LINES) and manifest['ignore_index'] == 255
    assert manifest['eval_split'] == 'val' and manifest['source']['raw'] == 'datasets/standin'
    for split, count in standin.COUNTS.items():
        stats = manifest['splits'][split]
        labels = [standin.scene(split, i)[1] for i in range(count)]
        assert stats['images'] == count
        assert stats['class_pixels'] == [sum(int((label == c).sum()) for label in labels) for c in range(5)]
        assert stats['class_images'] == [sum(bool((label == c).any()) for label in labels) for c in range(5)]
        assert stats['ignored_pixels'] == sum(int((label == 255).sum()) for label in labels)
        assert stats['sizes'] == {'min': [standin.SIZE, standin.NARROW], 'max': [standin.SIZE, standin.SIZE]}
        items = {image.rsplit('.', 1)[0]: (image, label) for image, label in stats['items']}
        for index, label in enumerate(labels):
            image_path, label_path = items[f'{split}/images/{standin.stem(split, index)}']
            np.testing.assert_array_equal(np.asarray(Image.open(out / label_path)), label)
            kind = standin.image_kind(split, index)
            prepared = np.asarray(Image.open(out / image_path))
            assert prepared.shape == (*label.shape, 3) and image_path.endswith('.jpg' if kind == 'jpeg' else '.png')
            if kind in ('png', 'rgba'):
                np.testing.assert_array_equal(prepared, standin.scene(split, index)[0])


def test_the_commands_a_user_runs(tmp_path):
    """Generate, declare, prepare, as docs/datasets.md shows it (from the repository root)."""
    (tmp_path / 'params.yaml').write_text(yaml.safe_dump({'datasets': {'standin': standin.DECLARATION}}))
    for argv in (['standin_dataset', '--out', 'datasets/standin'], ['declared', 'standin']):
        result = subprocess.run([sys.executable, '-m', f'logoseg.tools.prepare.{argv[0]}', *argv[1:]],
                                cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
    assert result.stderr.strip().endswith('prepared/datasets/standin: 44 images prepared')
    manifest = json.loads((tmp_path / 'prepared' / 'datasets' / 'standin' / 'manifest.json').read_text())
    assert {split: stats['images'] for split, stats in manifest['splits'].items()} == standin.COUNTS
    assert not (tmp_path / 'prepared' / 'datasets' / 'standin.problems.txt').exists()
