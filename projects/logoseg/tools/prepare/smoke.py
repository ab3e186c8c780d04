"""Smoke stand-ins: generated scenes in the exact layout the real dataset classes read (``data_root`` = --out).

    python -m logoseg.tools.prepare.smoke --out prepared/smoke_standins [--train-images 64] [--val-images 12]

The CPU smoke profile trains and evaluates the real configs' code paths on these. Every scene is drawn by
:func:`logoseg.datasets.smoke.render_scene` from a universe of 21 concepts whose first-synonym class names
are identical in every vocabulary (``person`` ... ``chair`` in all seven; ``grass``, ``tree`` ... in all but
the VOC ones), so a model trained on one vocabulary is scored on the others' names. Label ids are each
benchmark's own trainIds (``vocab/<name>.json`` order), in the benchmark's format:

========  ==============================================================  =====================
set       folders below --out (images, labels)                             labels
========  ==============================================================  =====================
COCO      data/cocostuff/images/{train2017,val2017},                       uint8 PNG, ignore 255
          prepared/coco_stuff171/{train2017,val2017}
A-150     data/ADEChallengeData2016/images/{training,validation},          uint8 PNG, ignore 255
          prepared/ade150/{training,validation}
A-847     prepared/ade847/{images,annotations} (A-150's val scenes)        uint16 TIFF, 65535
PC-59     data/VOCdevkit/VOC2010/JPEGImages, prepared/pc59/{train,val}     uint8 PNG, ignore 255
PC-459    the PC-59 val scenes, prepared/pc459/val                         uint16 TIFF, 65535
PAS-20    data/VOCdevkit/VOC2012/JPEGImages, prepared/voc20/val            uint8 PNG, background 255
PAS-20b   the PAS-20 scenes, prepared/voc20b/val                           uint8 PNG, background 20
========  ==============================================================  =====================

Each image folder has its own scene distribution (:data:`DOMAINS`): COCO shows every concept (objects
most often), PASCAL-Context the VOC objects on stuff, ADE stuff and indoor things with few VOC objects, VOC
mostly VOC objects. So the Table 5 rows (training on PC-59 or A-150 instead of COCO) see other concepts and
differ. Deterministic (one seed per scene), atomic and idempotent
(:func:`~logoseg.tools.prepare.common.execute`); the marker ``<out>/.prepare.json`` records
``content_sha256``, the data version of the smoke profile.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from logoseg.datasets import smoke as scenes
from logoseg.utils.vocab import first_synonym, load_vocabulary

from .common import LabelSpec, Plan, check_label, execute, run_main, write_png, write_tiff

VOC_OBJECTS = ('person', 'bicycle', 'boat', 'bottle', 'bus', 'car', 'chair')  # in all seven vocabularies
OTHER_THINGS = ('bed', 'bench', 'book', 'cabinet', 'flower', 'light', 'truck')  # not VOC: PAS-20 background
STUFF = ('grass', 'road', 'mountain', 'rock', 'tree', 'fence', 'curtain')  # not VOC; also fill backgrounds
CONCEPTS = VOC_OBJECTS + OTHER_THINGS + STUFF


@dataclass(frozen=True)
class Domain:
    """A scene distribution: the concepts that appear, those that fill the background, shape frequencies."""

    classes: tuple[str, ...]
    backgrounds: tuple[str, ...]
    weights: tuple[float, ...] | None = None  # per class, relative frequency among the shapes
    require: tuple[str, ...] = ()  # every scene shows one of these (PASCAL VOC images all have an object)


DOMAINS = {
    'coco': Domain(CONCEPTS, STUFF, (3.0, ) * len(VOC_OBJECTS) + (1.0, ) * (len(CONCEPTS) - len(VOC_OBJECTS))),
    'pascal_context': Domain(VOC_OBJECTS + STUFF, STUFF, (3.0, ) * len(VOC_OBJECTS) + (1.0, ) * len(STUFF)),
    'ade': Domain(STUFF + OTHER_THINGS + ('person', 'car', 'chair'), STUFF),
    'voc': Domain(VOC_OBJECTS + STUFF, STUFF, (6.0, ) * len(VOC_OBJECTS) + (1.0, ) * len(STUFF), VOC_OBJECTS),
}


@dataclass(frozen=True)
class LabelFormat:
    """A benchmark's label maps: vocabulary, dtype/ignore, file type, the id of concepts it does not name."""

    vocabulary: str
    spec: LabelSpec
    suffix: str = '.png'
    unnamed: str = 'error'  # 'ignore' (PAS-20) or 'background' (PAS-20b: class 20) for non-VOC concepts


def _png(vocabulary: str, **kwargs) -> LabelFormat:
    return LabelFormat(vocabulary, LabelSpec(np.uint8, len(load_vocabulary(vocabulary)), 255), **kwargs)


def _tiff(vocabulary: str) -> LabelFormat:
    return LabelFormat(vocabulary, LabelSpec(np.uint16, len(load_vocabulary(vocabulary)), 65535), '.tif')


FORMATS = {
    'coco': _png('coco'),
    'ade150': _png('ade150'),
    'ade847': _tiff('ade847'),
    'pc59': _png('pc59'),
    'pc459': _tiff('pc459'),
    'voc20': _png('voc20', unnamed='ignore'),
    'voc20b': LabelFormat('voc20', LabelSpec(np.uint8, 21, 255), unnamed='background'),
}


@dataclass(frozen=True)
class SceneSet:
    """Scenes of one domain saved once as images and labelled for one or more benchmarks.

    Args:
        name: file name prefix (sets sharing an image folder must differ).
        domain: key of :data:`DOMAINS`.
        role: ``'train'`` or ``'val'`` (picks the image count and size).
        seed: seed of the first scene; scene i uses ``seed + i``.
        image_dir: image folder below --out.
        labels: (key of :data:`FORMATS`, label folder below --out) pairs.
    """

    name: str
    domain: str
    role: str
    seed: int
    image_dir: str
    labels: tuple[tuple[str, str], ...]


SCENE_SETS = (
    SceneSet('coco_train', 'coco', 'train', 100_000, 'data/cocostuff/images/train2017',
             (('coco', 'prepared/coco_stuff171/train2017'), )),
    SceneSet('coco_val', 'coco', 'val', 110_000, 'data/cocostuff/images/val2017',
             (('coco', 'prepared/coco_stuff171/val2017'), )),
    SceneSet('ade_train', 'ade', 'train', 200_000, 'data/ADEChallengeData2016/images/training',
             (('ade150', 'prepared/ade150/training'), )),
    SceneSet('ade_val', 'ade', 'val', 210_000, 'data/ADEChallengeData2016/images/validation',
             (('ade150', 'prepared/ade150/validation'), )),
    # A-847 is ADE20K's validation images again, copied by its own preparation into its own folder
    SceneSet('ade_val', 'ade', 'val', 210_000, 'prepared/ade847/images',
             (('ade847', 'prepared/ade847/annotations'), )),
    SceneSet('pc_train', 'pascal_context', 'train', 300_000, 'data/VOCdevkit/VOC2010/JPEGImages',
             (('pc59', 'prepared/pc59/train'), )),
    SceneSet('pc_val', 'pascal_context', 'val', 310_000, 'data/VOCdevkit/VOC2010/JPEGImages',
             (('pc59', 'prepared/pc59/val'), ('pc459', 'prepared/pc459/val'))),
    SceneSet('voc_val', 'voc', 'val', 410_000, 'data/VOCdevkit/VOC2012/JPEGImages',
             (('voc20', 'prepared/voc20/val'), ('voc20b', 'prepared/voc20b/val'))),
)
SIZES = {'train': 48, 'val': 56}  # square scenes; the configs' pipelines resize them like the paper's
JPEG = dict(quality=95, subsampling=0)  # 4:4:4 keeps the 2-pixel stripes of the textures


@lru_cache(maxsize=None)
def concept_ids(fmt_key: str, classes: tuple[str, ...]) -> np.ndarray:
    """Lookup table (256,): concept index in ``classes`` (and 255, the scene's ignore) -> the format's label id."""
    fmt = FORMATS[fmt_key]
    names = [first_synonym(name) for name in load_vocabulary(fmt.vocabulary)]
    lut = np.full(256, fmt.spec.ignore, dtype=np.int64)
    for index, concept in enumerate(classes):
        if concept in names:
            lut[index] = names.index(concept)
        elif fmt.unnamed == 'background':
            lut[index] = fmt.spec.num_classes - 1
        elif fmt.unnamed != 'ignore':
            raise ValueError(f'concept {concept!r} is not a class of {fmt.vocabulary}')
    return lut


def render(domain: Domain, seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A scene of ``domain``: (image uint8 (size, size, 3), label uint8 (size, size) indexing ``domain.classes``,
    255 on shape borders). A scene without a required concept is redrawn with the next seed of a
    sequence of its own (deterministic)."""
    backgrounds = [domain.classes.index(name) for name in domain.backgrounds]
    required = [domain.classes.index(name) for name in domain.require]
    for attempt in range(100):
        image, label = scenes.render_scene(seed + attempt * 1_000_003, size, 255, domain.classes, backgrounds,
                                           domain.weights)
        if not required or np.isin(label, required).any():
            return image, label
    raise RuntimeError(f'no scene with one of {domain.require} in 100 draws from seed {seed}')


def convert(task: tuple, root: Path) -> None:
    """Render one scene and write its image and label maps below ``root``.

    task = (domain key, seed, size, image path, ((format key, label path), ...)).
    """
    domain_key, seed, size, image_path, labels = task
    domain = DOMAINS[domain_key]
    image, label = render(domain, seed, size)
    (root / image_path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(root / image_path, **JPEG)
    for fmt_key, label_path in labels:
        fmt = FORMATS[fmt_key]
        mapped = concept_ids(fmt_key, domain.classes)[label]
        check_label(mapped, fmt.spec)
        write = write_tiff if fmt.suffix == '.tif' else write_png
        write(root / label_path, mapped.astype(fmt.spec.dtype))


def build_plan(out: Path, train_images: int = 64, val_images: int = 12) -> Plan:
    counts = {'train': train_images, 'val': val_images}
    tasks = []
    for scene_set in SCENE_SETS:
        for index in range(counts[scene_set.role]):
            stem = f'{scene_set.name}_{index:04d}'
            labels = tuple((fmt, f'{folder}/{stem}{FORMATS[fmt].suffix}') for fmt, folder in scene_set.labels)
            tasks.append((scene_set.domain, scene_set.seed + index, SIZES[scene_set.role],
                          f'{scene_set.image_dir}/{stem}.jpg', labels))
    vocab = Path(scenes.__file__).parents[1] / 'vocab'
    sources = [Path(__file__), Path(scenes.__file__), *(vocab / f'{FORMATS[k].vocabulary}.json' for k in FORMATS)]
    settings = {'train_images': train_images, 'val_images': val_images, 'sizes': SIZES, 'jpeg': JPEG,
                'pillow': Image.__version__}  # JPEG bytes depend on the encoder version
    return Plan('smoke_standins', out, out, tasks, convert, [], settings, sources, content_hash=True)


def prepare(out: Path, train_images: int = 64, val_images: int = 12) -> bool:
    """Write the stand-ins under ``out``; False when they were already up to date."""
    return execute(build_plan(out, train_images, val_images))


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be >= 1, got {value}')
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m logoseg.tools.prepare.smoke',
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument('--out', type=Path, required=True, help='output directory, e.g. prepared/smoke_standins')
    parser.add_argument('--train-images', type=_positive_int, default=64, help='images per training set')
    parser.add_argument('--val-images', type=_positive_int, default=12, help='images per validation set')
    args = parser.parse_args(argv)
    return run_main(lambda: prepare(args.out, args.train_images, args.val_images))


if __name__ == '__main__':
    sys.exit(main())
