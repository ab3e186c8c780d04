"""A generated stand-in for a user's own dataset, in the documented raw layout (:mod:`.declared`).

    python -m logoseg.tools.prepare.standin_dataset --out datasets/standin

Smoke scenes (:func:`logoseg.datasets.smoke.render_scene`, the five smoke classes in their order, so a model
trained on smoke scenes transfers) saved the many ways users' data comes, matching :data:`DECLARATION`:

=====  ======  ============================================================  ===========================
split  images  image files                                                   masks
=====  ======  ============================================================  ===========================
train  24      JPEG and RGB PNG, one greyscale PNG, one RGBA PNG, one 16-bit  palette PNG, ignore 255
               greyscale PNG, one JPEG stored rotated with EXIF orientation
               6 (it displays upright); half of them in a sub-folder
val    12      JPEG                                                          16-bit PNG, ignore 65535
test   8       JPEG                                                          8-bit PNG, reduce_zero_label
                                                                             (0 ignored, v is class v-1)
=====  ======  ============================================================  ===========================

Scene seeds differ from the smoke datasets' and the smoke stand-ins'. Deterministic, written atomically and
skipped when up to date (:func:`~logoseg.tools.prepare.common.execute`; its marker ``.prepare.json``, a hidden
file the preparation does not read, records ``content_sha256``).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from logoseg.datasets import smoke as scenes
from logoseg.utils.vocab import first_synonym

from .common import Plan, execute, run_main

CLASS_LINES = ('sky', 'grass, lawn', 'sand, beach', 'water, sea, lake', 'brick, brick wall')
assert tuple(map(first_synonym, CLASS_LINES)) == scenes.SMOKE_CLASSES
COUNTS = {'train': 24, 'val': 12, 'test': 8}
SEEDS = {'train': 500_000, 'val': 510_000, 'test': 520_000}  # smoke.py: 0, 10_000; the stand-ins 100_000..410_000
SIZE = 48  # scenes are SIZE x SIZE; every third one is cropped to SIZE x NARROW (non-square sizes)
NARROW = 40
JPEG = dict(quality=95, subsampling=0)  # 4:4:4 keeps the 2-pixel stripes of the textures
EXIF_ORIENTATION = 6  # "rotate 90 degrees clockwise to display"
TRAIN_SPECIALS = {0: 'grey', 1: 'rgba', 2: 'png16', 3: 'exif'}  # train index -> image kind; others jpeg / png
DECLARATION = {  # datasets.standin of params.yaml
    'raw': 'datasets/standin',
    'classes': 'classes.txt',
    'eval_split': 'val',
    'splits': {
        'train': {'img_path': 'images/train', 'seg_map_path': 'masks/train'},
        'val': {'img_path': 'images/val', 'seg_map_path': 'masks/val', 'ignore_index': 65535},
        'test': {'img_path': 'images/test', 'seg_map_path': 'masks/test', 'reduce_zero_label': True},
    },
}
PALETTE = [c for name in scenes.SMOKE_CLASSES for c in scenes.APPEARANCE[name][0]]
PALETTE += [0] * (3 * 255 - len(PALETTE)) + [255, 255, 255]  # entry 255 (ignore): white


def image_kind(split: str, index: int) -> str:
    """How scene ``index`` of ``split`` is saved: grey, rgba, png16, exif, png or jpeg."""
    if split != 'train':
        return 'jpeg'
    return TRAIN_SPECIALS.get(index, 'png' if index % 4 == 0 else 'jpeg')


def scene(split: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    """The displayed image (H, W, 3) uint8 and its labels (H, W) uint8 (class index, 255 on shape borders)."""
    image, label = scenes.render_scene(SEEDS[split] + index, SIZE)
    if index % 3 == 1 or image_kind(split, index) == 'exif':  # non-square: a missed EXIF rotation shows
        image, label = image[:, :NARROW], label[:, :NARROW]
    return image, label


def stem(split: str, index: int) -> str:
    """The file name without suffix below the split's folders: the second half of train in a sub-folder."""
    name = f'{split}_{index:03d}'
    return f'more/{name}' if split == 'train' and index >= COUNTS['train'] // 2 else name


def save_image(path: Path, image: np.ndarray, kind: str) -> Path:
    """Write ``image`` as ``kind``; returns the file (``path`` plus its suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(image)
    if kind in ('jpeg', 'exif'):
        file = path.with_name(f'{path.name}.jpg')
        if kind == 'exif':  # stored turned 90 degrees counter-clockwise, displayed upright through the tag
            exif = Image.Exif()
            exif[0x0112] = EXIF_ORIENTATION
            picture.transpose(Image.Transpose.ROTATE_90).save(file, exif=exif.tobytes(), **JPEG)
        else:
            picture.save(file, **JPEG)
        return file
    file = path.with_name(f'{path.name}.png')
    grey = picture.convert('L')
    if kind == 'grey':
        grey.save(file)
    elif kind == 'png16':
        Image.fromarray(np.asarray(grey).astype(np.uint16) * 257).save(file)
    elif kind == 'rgba':
        alpha = np.linspace(64, 255, image.shape[1]).astype(np.uint8)[None].repeat(image.shape[0], 0)
        Image.fromarray(np.dstack([image, alpha])).save(file)
    else:
        picture.save(file)
    return file


def save_mask(path: Path, label: np.ndarray, split: str) -> None:
    """Write ``label`` (class indices, 255 ignored) as ``split``'s mask format (module docstring)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if split == 'train':
        mask = Image.fromarray(label)
        mask.putpalette(PALETTE)  # mode P: the palette indices are the labels
    elif split == 'val':
        wide = label.astype(np.uint16)
        mask = Image.fromarray(np.where(label == 255, np.uint16(65535), wide))
    else:
        mask = Image.fromarray(np.where(label == 255, 0, label + 1).astype(np.uint8))
    mask.save(path.with_name(f'{path.name}.png'))


def convert(task: tuple[str, int], root: Path) -> None:
    """Write scene ``index`` of ``split`` below ``root``; task = (split, index)."""
    split, index = task
    image, label = scene(split, index)
    folders = DECLARATION['splits'][split]
    save_image(root / folders['img_path'] / stem(split, index), image, image_kind(split, index))
    save_mask(root / folders['seg_map_path'] / stem(split, index), label, split)


def write_classes(root: Path, results: list) -> None:
    """The plan's finish step: the class file, once (the tasks write one scene each)."""
    (root / DECLARATION['classes']).write_text(''.join(f'{line}\n' for line in CLASS_LINES), encoding='utf-8')


def build_plan(out: Path) -> Plan:
    tasks = [(split, index) for split, count in COUNTS.items() for index in range(count)]
    settings = {'counts': COUNTS, 'seeds': SEEDS, 'size': [SIZE, NARROW], 'jpeg': JPEG, 'classes': CLASS_LINES,
                'pillow': Image.__version__}  # JPEG bytes depend on the encoder version
    return Plan('standin', out, out, tasks, convert, [], settings, [Path(__file__), Path(scenes.__file__)],
                content_hash=True, finish=write_classes)


def generate(out: Path) -> bool:
    """Write the stand-in raw dataset to ``out``; False when it was already up to date."""
    return execute(build_plan(out))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m logoseg.tools.prepare.standin_dataset',
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument('--out', type=Path, default=Path(DECLARATION['raw']),
                        help=f'output folder (default: {DECLARATION["raw"]})')
    args = parser.parse_args(argv)
    return run_main(lambda: generate(args.out))


if __name__ == '__main__':
    sys.exit(main())
