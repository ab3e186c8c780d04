import numpy as np
import pytest
from PIL import Image

from logoseg.datasets.smoke import SMOKE_CLASSES, SmokeShapesDataset, generate_split, render_scene


def test_scenes_are_deterministic_and_labelled_with_an_ignore_border():
    image, label = render_scene(3)
    again_image, again_label = render_scene(3)
    assert np.array_equal(image, again_image) and np.array_equal(label, again_label)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    values = set(np.unique(label).tolist())
    assert values <= set(range(len(SMOKE_CLASSES))) | {255}
    assert 255 in values and len(values - {255}) >= 2
    assert not np.array_equal(render_scene(4)[1], label)


def test_generation_writes_once_and_the_dataset_lists_it(tmp_path):
    split = generate_split(tmp_path, 'val', num_images=3, size=32)
    files = sorted((split / 'images').iterdir())
    mtimes = [f.stat().st_mtime_ns for f in files]
    generate_split(tmp_path, 'val', num_images=3, size=32)
    assert [f.stat().st_mtime_ns for f in files] == mtimes  # second call reuses the complete split
    label = np.array(Image.open(split / 'labels' / '0001.png'))
    assert np.array_equal(label, render_scene(10_000 + 1, 32)[1])
    dataset = SmokeShapesDataset(data_root=str(tmp_path), split='val', num_images=3, image_size=32,
                                 pipeline=[])
    assert len(dataset) == 3 and dataset.metainfo['classes'] == SMOKE_CLASSES


def test_an_interrupted_split_is_not_taken_as_complete(tmp_path, monkeypatch):
    import logoseg.datasets.smoke as smoke
    original = smoke.render_scene
    calls = []

    def crash_on_third(seed, size=64, ignore_index=255):
        calls.append(seed)
        if len(calls) == 3:
            raise RuntimeError('interrupted')
        return original(seed, size, ignore_index)

    monkeypatch.setattr(smoke, 'render_scene', crash_on_third)
    with pytest.raises(RuntimeError):
        generate_split(tmp_path, 'train', num_images=4, size=16)
    assert not (tmp_path / 'train').exists() and list(tmp_path.iterdir()) == []
    monkeypatch.setattr(smoke, 'render_scene', original)
    split = generate_split(tmp_path, 'train', num_images=4, size=16)
    assert len(list((split / 'images').iterdir())) == 4


def test_changed_settings_regenerate_the_split(tmp_path):
    generate_split(tmp_path, 'val', num_images=2, size=16)
    split = generate_split(tmp_path, 'val', num_images=5, size=16)
    assert len(list((split / 'labels').iterdir())) == 5
