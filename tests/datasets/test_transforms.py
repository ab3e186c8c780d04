"""LoadSegAnnotations keeps 16-bit label values that MMSeg's LoadAnnotations narrows to uint8."""
import logoseg  # noqa: F401  (compat fixes, registrations)
import numpy as np
import pytest
import tifffile
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS
from PIL import Image

from logoseg.datasets import LoadSegAnnotations
from logoseg.utils.errors import LoGoSegUserError


@pytest.fixture
def label16() -> np.ndarray:
    """A-847 / PC-459-like map: classes above 255 and the 65535 ignore value."""
    rng = np.random.default_rng(0)
    label = rng.integers(0, 847, size=(12, 17)).astype(np.uint16)
    label[0, :3] = (256, 300, 846)
    label[-1, -4:] = 65535
    return label


def _write(label: np.ndarray, path, fmt: str) -> str:
    if fmt == 'tif':
        tifffile.imwrite(path, label, compression='zlib')
    elif fmt == 'tif-lzw':
        Image.fromarray(label).save(path, compression='tiff_lzw')
    else:
        Image.fromarray(label).save(path)  # 16-bit greyscale PNG
    return str(path)


def _results(path: str, reduce_zero_label: bool = False, label_map=None) -> dict:
    return dict(seg_map_path=path, reduce_zero_label=reduce_zero_label, label_map=label_map, seg_fields=[])


@pytest.mark.parametrize('backend', ['pillow', 'cv2'])
@pytest.mark.parametrize('fmt,suffix', [('tif', '.tif'), ('tif-lzw', '.tif'), ('png', '.png')])
def test_keeps_16bit_values(tmp_path, label16, fmt, suffix, backend):
    path = _write(label16, tmp_path / f'label{suffix}', fmt)
    out = LoadSegAnnotations(imdecode_backend=backend)(_results(path))
    assert out['gt_seg_map'].dtype == np.uint16
    np.testing.assert_array_equal(out['gt_seg_map'], label16)
    assert out['seg_fields'] == ['gt_seg_map']


def test_stock_loader_corrupts_what_ours_keeps(tmp_path, label16):
    path = _write(label16, tmp_path / 'label.tif', 'tif')
    stock = LoadAnnotations()(_results(path))['gt_seg_map']
    ours = LoadSegAnnotations()(_results(path))['gt_seg_map']
    # the uint8 cast keeps the low byte: class 300 -> 44, ignore 65535 -> 255 (a class index elsewhere)
    np.testing.assert_array_equal(stock, (label16 % 256).astype(np.uint8))
    assert stock[0, 1] == 44 and stock[-1, -1] == 255
    assert ours[0, 1] == 300 and ours[-1, -1] == 65535


def test_registered_and_buildable():
    assert isinstance(TRANSFORMS.build(dict(type='LoadSegAnnotations')), LoadSegAnnotations)


def test_reduce_zero_label_matches_parent_on_8bit(tmp_path):
    label = np.arange(256, dtype=np.uint8).reshape(16, 16)
    path = str(tmp_path / 'label.png')
    Image.fromarray(label).save(path)
    stock = LoadAnnotations()(_results(path, reduce_zero_label=True))['gt_seg_map']
    ours = LoadSegAnnotations()(_results(path, reduce_zero_label=True))['gt_seg_map']
    np.testing.assert_array_equal(ours, stock)
    expected = label.astype(np.int64) - 1
    expected[(label == 0) | (label == 255)] = 255
    np.testing.assert_array_equal(ours, expected)


def test_reduce_zero_label_on_16bit(tmp_path):
    label = np.array([[0, 1, 255], [256, 301, 847]], dtype=np.uint16)
    path = _write(label, tmp_path / 'label.tif', 'tif')
    out = LoadSegAnnotations()(_results(path, reduce_zero_label=True))['gt_seg_map']
    np.testing.assert_array_equal(out, [[255, 0, 255], [255, 300, 846]])


def test_label_map_maps_original_values(tmp_path):
    label = np.array([[1, 2], [300, 65535]], dtype=np.uint16)
    path = _write(label, tmp_path / 'label.tif', 'tif')
    # a swap: mapping from already remapped values would send both to the same class
    out = LoadSegAnnotations()(_results(path, label_map={1: 2, 2: 1, 300: 255}))['gt_seg_map']
    np.testing.assert_array_equal(out, [[2, 1], [255, 65535]])


def test_reduce_zero_label_mismatch_with_dataset(tmp_path, label16):
    path = _write(label16, tmp_path / 'label.tif', 'tif')
    with pytest.raises(ValueError, match='reduce_zero_label'):
        LoadSegAnnotations(reduce_zero_label=True)(_results(path, reduce_zero_label=False))


def test_rgb_label_rejected(tmp_path):
    path = str(tmp_path / 'label.png')
    Image.fromarray(np.zeros((4, 5, 3), dtype=np.uint8)).save(path)
    with pytest.raises(LoGoSegUserError, match='one channel'):
        LoadSegAnnotations()(_results(path))


def test_images_without_labels_pass_through_for_inference():
    results = dict(img_path='x.jpg', img=np.zeros((4, 4, 3), np.uint8))
    assert LoadSegAnnotations()(dict(results)).keys() == results.keys()
