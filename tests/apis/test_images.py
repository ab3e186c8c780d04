"""Every kind of image file a user has ends up as the (H, W, 3) uint8 RGB the model expects."""
import numpy as np
import pytest
from PIL import Image

from logoseg.apis.images import read_image
from logoseg.utils.errors import LoGoSegUserError

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (12, 20, 3), dtype=np.uint8)


def save(image: Image.Image, path, **kwargs):
    image.save(path, **kwargs)
    return path


def test_rgb_file_numpy_array_and_pil_image_read_the_same(tmp_path):
    path = save(Image.fromarray(RGB), tmp_path / 'rgb.png')
    assert np.array_equal(read_image(path), RGB)
    assert np.array_equal(read_image(str(path)), RGB)
    assert np.array_equal(read_image(RGB), RGB)
    assert np.array_equal(read_image(Image.open(path)), RGB)


def test_greyscale_is_replicated_to_three_channels(tmp_path):
    grey = RGB[..., 0]
    out = read_image(save(Image.fromarray(grey, mode='L'), tmp_path / 'grey.png'))
    assert out.shape == (12, 20, 3) and all(np.array_equal(out[..., c], grey) for c in range(3))
    assert np.array_equal(read_image(grey[..., None]), out)


def test_rgba_keeps_the_colour_channels_whatever_the_alpha(tmp_path):
    alpha = RNG.integers(0, 256, (12, 20, 1), dtype=np.uint8)
    rgba = np.concatenate([RGB, alpha], axis=2)
    assert np.array_equal(read_image(save(Image.fromarray(rgba, mode='RGBA'), tmp_path / 'a.png')), RGB)
    assert np.array_equal(read_image(rgba), RGB)


def test_palette_images_are_looked_up(tmp_path):
    palette = np.array([[255, 0, 0], [0, 128, 255], [10, 20, 30]], np.uint8)
    indices = RNG.integers(0, 3, (12, 20), dtype=np.uint8)
    image = Image.fromarray(indices, mode='P')
    image.putpalette(palette.ravel().tolist())
    assert np.array_equal(read_image(save(image, tmp_path / 'p.png')), palette[indices])


def test_sixteen_bit_images_keep_their_high_byte(tmp_path):
    import cv2
    grey16 = RGB[..., 0].astype(np.uint16) * 257  # v * 257 is 8-bit v stretched to 16 bits
    cv2.imwrite(str(tmp_path / 'g16.png'), grey16)
    assert Image.open(tmp_path / 'g16.png').mode.startswith('I;16')
    assert np.array_equal(read_image(tmp_path / 'g16.png'), np.repeat(RGB[..., :1], 3, axis=2))
    rgb16 = RGB.astype(np.uint16) * 256 + RNG.integers(0, 256, RGB.shape, dtype=np.uint16)  # any low byte
    cv2.imwrite(str(tmp_path / 'rgb16.png'), rgb16[..., ::-1])  # OpenCV writes BGR
    assert np.array_equal(read_image(tmp_path / 'rgb16.png'), RGB)
    assert np.array_equal(read_image(rgb16), RGB)


@pytest.mark.parametrize('orientation, rotation', [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied(tmp_path, orientation, rotation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = save(Image.fromarray(RGB), tmp_path / 'rotated.png', exif=exif)
    upright = np.rot90(RGB, k=rotation)  # k > 0: counter-clockwise
    assert np.array_equal(read_image(path), upright)
    assert np.array_equal(read_image(Image.open(path)), upright)
    jpeg = save(Image.fromarray(RGB), tmp_path / 'rotated.jpg', exif=exif, quality=100)
    assert read_image(jpeg).shape == upright.shape


@pytest.mark.parametrize('content', [b'', b'not an image at all', 'truncated'])
def test_unreadable_files_fail_in_one_line_naming_the_file(tmp_path, content):
    path = tmp_path / 'broken.jpg'
    if content == 'truncated':
        save(Image.fromarray(RGB), path, quality=90)
        path.write_bytes(path.read_bytes()[:200])
    else:
        path.write_bytes(content)
    with pytest.raises(LoGoSegUserError, match=r'broken\.jpg: not a readable image') as err:
        read_image(path)
    assert '\n' not in str(err.value)


def test_missing_files_unsupported_arrays_and_objects_are_refused(tmp_path):
    with pytest.raises(LoGoSegUserError, match='no such image file'):
        read_image(tmp_path / 'missing.png')
    with pytest.raises(LoGoSegUserError, match=r'float64 .*\.astype\(numpy\.uint8\)'):
        read_image(RGB / 255.0)
    with pytest.raises(LoGoSegUserError, match=r'shape \(12, 20, 2\) is not an image'):
        read_image(RGB[..., :2])
    with pytest.raises(LoGoSegUserError, match='empty'):
        read_image(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(LoGoSegUserError, match='cannot segment a list'):
        read_image([1, 2, 3])
    with pytest.raises(LoGoSegUserError, match='floating-point pixels'):
        read_image(save(Image.fromarray(RGB[..., 0].astype(np.float32)), tmp_path / 'f.tif'))
