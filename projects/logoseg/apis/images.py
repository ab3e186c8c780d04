"""Images as LoGoSeg reads them: (H, W, 3) uint8 RGB, whatever the file's mode, bit depth or orientation."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..utils.errors import LoGoSegUserError

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.gif')
ImageInput = Union[str, os.PathLike, np.ndarray, Image.Image]
_SIXTEEN_BIT = ('I;16', 'I;16L', 'I;16B', 'I;16N')


def read_image(image: ImageInput) -> np.ndarray:
    """An image file, PIL image or array as (H, W, 3) uint8 RGB.

    Files and PIL images are turned upright by their EXIF orientation. Greyscale is replicated to three
    channels, palette images are looked up, alpha is dropped (the colour channels are kept as they are, as
    MMCV and PIL do), 16-bit pixels keep their high byte. Arrays are read as RGB(A) or greyscale, uint8 or
    uint16.
    """
    if isinstance(image, np.ndarray):
        return _array_to_rgb(image, 'array')
    if isinstance(image, Image.Image):
        return _pil_to_rgb(ImageOps.exif_transpose(image), 'PIL image')
    if not isinstance(image, (str, os.PathLike)):
        raise LoGoSegUserError(f'cannot segment a {type(image).__name__}; pass a file path, a numpy array or a '
                               'PIL image')
    path = Path(image)
    if not path.is_file():
        raise LoGoSegUserError(f'{path}: no such image file')
    try:
        with Image.open(path) as opened:  # an animated image opens at its first frame
            opened.load()  # decodes now: a truncated file fails here, not half-way through the model
            return _pil_to_rgb(ImageOps.exif_transpose(opened), str(path))
    except Image.DecompressionBombError:
        raise LoGoSegUserError(f'{path}: larger than the {2 * Image.MAX_IMAGE_PIXELS / 1e6:.3g} megapixels Pillow '
                               'opens (its guard against decompression bombs); downscale it, or raise '
                               'PIL.Image.MAX_IMAGE_PIXELS in Python if you trust the file') from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise LoGoSegUserError(f'{path}: not a readable image ({err})') from None


def _pil_to_rgb(image: Image.Image, source: str) -> np.ndarray:
    if image.mode in _SIXTEEN_BIT:
        return _array_to_rgb(np.asarray(image).astype(np.uint16), source)
    if image.mode in ('I', 'F'):
        raise LoGoSegUserError(f'{source}: {"32-bit integer" if image.mode == "I" else "floating-point"} pixels '
                               'are not supported; convert the image to 8 or 16 bits per channel')
    return np.ascontiguousarray(np.asarray(image.convert('RGB')))


def _array_to_rgb(array: np.ndarray, source: str) -> np.ndarray:
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise LoGoSegUserError(f'{source}: pixels of type {array.dtype} are not supported; pass uint8 (0-255) or '
                               'uint16 values, e.g. (image * 255).astype(numpy.uint8) for floats in [0, 1]')
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise LoGoSegUserError(f'{source}: shape {array.shape} is not an image; expected (H, W), (H, W, 3) RGB '
                               'or (H, W, 4) RGBA')
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise LoGoSegUserError(f'{source}: the image is empty ({array.shape[0]}x{array.shape[1]} pixels)')
    return np.ascontiguousarray(array[..., :3])
