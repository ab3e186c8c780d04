"""Users' own datasets: a raw folder declared under ``datasets:`` of params.yaml, checked and prepared.

    python -m logoseg.tools.prepare.declared <name> [--params params.yaml] [--out prepared/datasets/<name>]
                                             [--workers N]

The declaration (docs/datasets.md, "Your own data"; MMSeg's ``BaseSegDataset`` layout)::

    datasets:
      standin:                      # [a-z0-9_]+, also the metric prefix (standin/mIoU)
        raw: datasets/standin       # relative to the repository root (the folder of params.yaml)
        classes: classes.txt        # relative to raw; line i (0-based) is label value i; "grass, lawn": synonyms
        img_suffix: null            # null: .jpg .jpeg .png .bmp .tif .tiff .webp (any case); else e.g. .jpg
        seg_map_suffix: .png        # ends in .png, .tif or .tiff
        ignore_index: 255           # the raw masks' ignore value (65535 for 16-bit masks)
        reduce_zero_label: false    # true: raw 0 is ignored, raw v is class v-1
        eval_split: val
        splits:                     # each split may override img_suffix .. reduce_zero_label
          train: {img_path: images/train, seg_map_path: masks/train}

Images pair with masks by their path below the split's folders without the suffix (sub-folders allowed; hidden
files and folders, such as macOS's ``._*``, are skipped). Every pair is decoded completely and checked, and
every problem is collected (:func:`prepare`): missing folders or class file, an empty or duplicated class list,
empty splits, unpaired files, unreadable files, image/mask size mismatches (the image as displayed, after its
EXIF orientation), masks that are not single-channel, label values that are neither a class nor ignored. The
first ten are printed, all of them listed in ``<out>.problems.txt`` beside the output, and nothing is written
to ``<out>`` (an earlier complete output stays as it was).

Output below ``<out>`` (default ``prepared/datasets/<name>`` of the repository root), written atomically and
skipped when inputs and settings are unchanged (:func:`~logoseg.tools.prepare.common.execute`):

- ``<split>/images/<key><ext>``: the raw file copied when it is a JPEG or 8-bit PNG that decodes as plain RGB
  with no EXIF rotation; otherwise ``<key>.png``, 8-bit RGB: EXIF orientation applied, alpha dropped (the
  colour channels kept as stored, not composited), greyscale replicated, 16-bit scaled to 8-bit.
- ``<split>/labels/<key>.png``: trainIds, class c -> c, every ignored pixel -> 255 (uint8) when there are at
  most 255 classes, else 65535 (16-bit PNG).
- ``classes.txt`` (the class lines, stripped) and ``manifest.json`` (:func:`manifest`).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml
from PIL import Image, ImageOps

from logoseg.utils.errors import LoGoSegUserError
from logoseg.utils.vocab import prompt_key

from .common import Plan, content_digest, execute, positive_int, read_failed, run_main, strict_decoding, write_png

NAME = re.compile(r'[a-z0-9_]+')
SPLIT_NAME = re.compile(r'[A-Za-z0-9_-]+')
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
MASK_SUFFIXES = ('.png', '.tif', '.tiff')
DEFAULTS = {'classes': 'classes.txt', 'img_suffix': None, 'seg_map_suffix': '.png', 'ignore_index': 255,
            'reduce_zero_label': False, 'eval_split': 'val'}
SPLIT_OPTIONS = ('img_suffix', 'seg_map_suffix', 'ignore_index', 'reduce_zero_label')  # a split may override them
LABEL_MODES = ('1', 'L', 'P', 'I;16', 'I;16L', 'I;16B', 'I;16N', 'I')  # single-channel integer images
WIDE_MODES = ('I;16', 'I;16L', 'I;16B', 'I;16N', 'I')  # 16-bit (or 32-bit integer) greyscale images
MAX_CLASSES = 65535  # labels 0..65534, 65535 ignored
MAX_SHOWN = 10  # problems printed; the report lists all
MANIFEST = 'manifest.json'
CLASS_FILE = 'classes.txt'
ORIENTATION = 0x0112  # the EXIF tag
FIX_FILE = 'replace or re-export it, or remove the pair'


class ProblemsFound(LoGoSegUserError):
    """The raw data has problems; ``problems`` lists each as one line, ``details`` the first ones printed."""

    def __init__(self, message: str, problems: Sequence[str] = ()):
        super().__init__(message)
        self.problems = list(problems)
        self.details = self.problems[:MAX_SHOWN]


# ---------------------------------------------------------------- the declaration

@dataclass(frozen=True)
class SplitSpec:
    """One split's folders (relative to the raw root) and its options, the dataset's defaults filled in."""

    img_path: str
    seg_map_path: str
    img_suffix: str | None
    seg_map_suffix: str
    ignore_index: int
    reduce_zero_label: bool


@dataclass(frozen=True)
class Declaration:
    """A declared dataset: ``raw`` as written in params.yaml, ``root`` the folder it is resolved against."""

    name: str
    raw: str
    root: Path
    classes: str
    eval_split: str
    splits: dict[str, SplitSpec]

    @property
    def raw_dir(self) -> Path:
        return self.root / self.raw

    def source(self) -> dict:
        """The resolved declaration as JSON (``manifest.json``'s ``source``)."""
        return {'raw': self.raw, 'classes': self.classes, 'eval_split': self.eval_split,
                'splits': {split: asdict(spec) for split, spec in self.splits.items()}}


def load_declaration(name: str, params: Path = Path('params.yaml')) -> Declaration:
    """``datasets.<name>`` of ``params``, checked: an unknown name or option, or a bad value, is a one-line error."""
    if not params.is_file():
        raise LoGoSegUserError(f'{params} not found; run from the repository root or give --params')
    try:
        data = yaml.safe_load(params.read_text(encoding='utf-8'))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise LoGoSegUserError(f'{params} is not valid YAML ({str(err).splitlines()[0]}); fix it') from None
    datasets = data.get('datasets') if isinstance(data, dict) else None
    if not isinstance(datasets, dict) or not datasets:
        raise LoGoSegUserError(f'{params} declares no datasets (a top-level datasets: mapping); declare {name} '
                               'there as docs/datasets.md ("Your own data") shows')
    if name not in datasets:
        raise LoGoSegUserError(f'no dataset {name!r} in {params}; declared: {", ".join(map(str, datasets))}')
    return parse_declaration(name, datasets[name], params.parent, str(params))


def _fail(where: str, params: str, problem: str, fix: str) -> LoGoSegUserError:
    return LoGoSegUserError(f'{where} in {params} {problem}; {fix}')


def _check_keys(entry: dict, allowed: Sequence[str], where: str, params: str) -> None:
    unknown = [key for key in entry if key not in allowed]
    if unknown:
        raise _fail(where, params, f'has an unknown option {unknown[0]!r}', f'the options are {", ".join(allowed)}')


def _text(value: Any, where: str, params: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, params, f'is {value!r}', 'give a path')
    return value


def _option(key: str, value: Any, where: str, params: str) -> Any:
    """A checked value of one of :data:`SPLIT_OPTIONS`."""
    where = f'{where}.{key}'
    if key == 'img_suffix' and not (value is None or isinstance(value, str) and value and '/' not in value):
        raise _fail(where, params, f'is {value!r}', f'give null (any of {" ".join(IMAGE_SUFFIXES)}) or a suffix '
                    'such as .jpg')
    if key == 'seg_map_suffix' and not (isinstance(value, str) and value.lower().endswith(MASK_SUFFIXES)):
        raise _fail(where, params, f'is {value!r}', 'give a suffix ending in .png, .tif or .tiff')
    if key == 'ignore_index' and not (type(value) is int and 0 <= value <= 65535):
        raise _fail(where, params, f'is {value!r}', 'give an integer 0..65535 (65535 for 16-bit masks)')
    if key == 'reduce_zero_label' and type(value) is not bool:
        raise _fail(where, params, f'is {value!r}', 'give true or false')
    return value


def parse_declaration(name: str, entry: Any, root: Path, params: str = 'params.yaml') -> Declaration:
    """Check one declaration (the mapping under ``datasets.<name>``) and fill in the defaults."""
    where = f'datasets.{name}'
    if not NAME.fullmatch(name):
        raise _fail(where, params, 'has a bad name', 'use lower-case letters, digits and _ (it prefixes metrics)')
    if not isinstance(entry, dict):
        raise _fail(where, params, f'is {entry!r}', 'give a mapping with at least raw: and splits:')
    _check_keys(entry, ('raw', 'splits', *DEFAULTS), where, params)
    for key in ('raw', 'splits'):
        if key not in entry:
            raise _fail(where, params, f'has no {key}: option', 'docs/datasets.md ("Your own data") shows the keys')
    raw = _text(entry['raw'], f'{where}.raw', params)
    classes = _text(entry.get('classes', DEFAULTS['classes']), f'{where}.classes', params)
    defaults = {key: _option(key, entry.get(key, DEFAULTS[key]), where, params) for key in SPLIT_OPTIONS}
    if not isinstance(entry['splits'], dict) or not entry['splits']:
        raise _fail(f'{where}.splits', params, f'is {entry["splits"]!r}',
                    'give a mapping split -> {img_path: ..., seg_map_path: ...}')
    splits = {}
    for split, options in entry['splits'].items():
        split_where = f'{where}.splits.{split}'
        if not isinstance(split, str) or not SPLIT_NAME.fullmatch(split):
            raise _fail(split_where, params, 'has a bad split name', 'use letters, digits, _ and -')
        if not isinstance(options, dict):
            raise _fail(split_where, params, f'is {options!r}', 'give {img_path: ..., seg_map_path: ...}')
        _check_keys(options, ('img_path', 'seg_map_path', *SPLIT_OPTIONS), split_where, params)
        folders = [_text(options.get(key), f'{split_where}.{key}', params) for key in ('img_path', 'seg_map_path')]
        values = {key: _option(key, options[key], split_where, params) if key in options else defaults[key]
                  for key in SPLIT_OPTIONS}
        splits[split] = SplitSpec(*folders, **values)
    eval_split = entry.get('eval_split', DEFAULTS['eval_split'])
    if eval_split not in splits:
        raise _fail(f'{where}.eval_split', params, f'is {eval_split!r}, not a split',
                    f'name one of {", ".join(splits)}')
    return Declaration(name, raw, root, classes, eval_split, splits)


# ---------------------------------------------------------------- the raw folder

def read_classes(path: Path) -> tuple[list[str] | None, list[str]]:
    """(the class lines, stripped; None when there is no usable list, problems). Trailing blank lines are
    dropped; a blank line inside, two classes prompted alike (:func:`~logoseg.utils.vocab.prompt_key`) or more
    than :data:`MAX_CLASSES` classes are problems."""
    if not path.is_file():
        return None, [f'class file {path} is missing; write one class name per line (line 1 is label 0)']
    try:
        lines = [line.strip() for line in path.read_text(encoding='utf-8-sig').splitlines()]
    except (OSError, UnicodeDecodeError) as err:
        return None, [f'class file {path} cannot be read ({err}); save it as UTF-8 text']
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        return None, [f'class file {path} is empty; write one class name per line (line 1 is label 0)']
    problems = [f'class file {path}: line {i + 1} (label {i}) is blank; name the class or remove the line'
                for i, line in enumerate(lines) if not prompt_key(line)]
    seen: dict[str, int] = {}
    for i, line in enumerate(lines):
        key = prompt_key(line)
        if key and seen.setdefault(key, i) != i:
            first = seen[key]
            problems.append(f'class file {path}: lines {first + 1} {lines[first]!r} and {i + 1} {line!r} are both '
                            f'prompted as {key!r} (the first comma-separated name); rename one or merge them')
    if len(lines) > MAX_CLASSES:
        problems.append(f'class file {path} lists {len(lines)} classes; at most {MAX_CLASSES} are supported')
    return lines, problems


def _listing(folder: Path, suffix: str | None, exclude: str | None = None) -> dict[str, list[Path]]:
    """key (the path below ``folder`` without ``suffix``, '/'-separated) -> the files with that key, sorted.

    ``suffix`` None: any of :data:`IMAGE_SUFFIXES`, in any case. Hidden files and folders are skipped, and
    names ending in ``exclude`` (the masks, when images and masks share a folder).
    """
    found: dict[str, list[Path]] = {}
    for directory, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
        for name in sorted(files):
            if name.startswith('.') or (exclude and name.endswith(exclude)):
                continue
            if suffix is None:
                stem, ext = os.path.splitext(name)
                if ext.lower() not in IMAGE_SUFFIXES:
                    continue
            elif name.endswith(suffix) and len(name) > len(suffix):
                stem = name[:-len(suffix)]
            else:
                continue
            path = Path(directory) / name
            key = (path.parent.relative_to(folder) / stem).as_posix()
            found.setdefault(key, []).append(path)
    return found


def pair_split(decl: Declaration, split: str) -> tuple[list[tuple[str, Path, Path]], list[Path], list[str]]:
    """A split's (key, image, mask) pairs sorted by key, every file listed (inputs), and its layout problems:
    missing folders, no files at all, unpaired files, two images with one key."""
    spec = decl.splits[split]
    img_dir, mask_dir = decl.raw_dir / spec.img_path, decl.raw_dir / spec.seg_map_path
    where = f'datasets.{decl.name}.splits.{split}'
    problems = [f'split {split}: {what} folder {folder} is missing; create it or fix {where}.{key}'
                for folder, what, key in ((img_dir, 'image', 'img_path'), (mask_dir, 'mask', 'seg_map_path'))
                if not folder.is_dir()]
    if problems:
        return [], [], problems
    images = _listing(img_dir, spec.img_suffix, spec.seg_map_suffix if img_dir == mask_dir else None)
    masks = _listing(mask_dir, spec.seg_map_suffix)
    if not images and not masks:
        wanted = spec.img_suffix or '/'.join(IMAGE_SUFFIXES)
        return [], [], [f'split {split} is empty: no {wanted} images in {img_dir}, no {spec.seg_map_suffix} masks '
                        f'in {mask_dir}; add the data or remove the split from {where}']
    for key, files in images.items():
        if len(files) > 1:
            problems.append(f'images {", ".join(map(str, files))} have the same name {key!r}; keep one of them')
    for key in sorted(images.keys() - masks.keys()):
        problems.append(f'image {images[key][0]} has no mask (expected {mask_dir / key}{spec.seg_map_suffix}); '
                        'add it or remove the image')
    for key in sorted(masks.keys() - images.keys()):
        problems.append(f'mask {masks[key][0]} has no image (expected {img_dir / key}'
                        f'{spec.img_suffix or "." + "/".join(s[1:] for s in IMAGE_SUFFIXES)}); add it or remove '
                        'the mask')
    pairs = [(key, images[key][0], masks[key][0]) for key in sorted(images.keys() & masks.keys())
             if len(images[key]) == 1]
    inputs = sorted([*(p for files in images.values() for p in files), *(p for files in masks.values() for p in files)])
    return pairs, inputs, problems


# ---------------------------------------------------------------- one pair

class Pair(NamedTuple):
    """One task: an image/mask pair and how to read its mask (``num_classes`` None: the class file is bad)."""

    split: str
    key: str
    image: str
    mask: str
    num_classes: int | None
    ignore_index: int
    reduce_zero_label: bool
    out_ignore: int


def _png_bit_depth(path: Path) -> int:
    """The bit depth byte of a PNG's header (IHDR is always the first chunk, at a fixed offset)."""
    with open(path, 'rb') as file:
        head = file.read(25)
    return head[24] if len(head) == 25 else 0


def to_rgb(image: Image.Image, path: Path) -> np.ndarray:
    """(H, W, 3) uint8: 16-bit (and 32-bit integer) greyscale scaled from 0..65535 to 0..255 and replicated;
    every other mode through PIL's RGB conversion (greyscale replicated, alpha dropped, palette looked up)."""
    if image.mode in WIDE_MODES:
        grey = np.asarray(image).astype(np.int64).clip(0, 65535)
        return np.repeat(((grey * 255 + 32767) // 65535).astype(np.uint8)[..., None], 3, axis=2)
    try:
        return np.asarray(image.convert('RGB'))
    except ValueError:  # modes PIL cannot convert ('F' floats, 'HSV' ...)
        raise LoGoSegUserError(f'image {path} is a {image.mode} image, which has no RGB form here; save it as 8-bit '
                               'RGB or greyscale') from None


def read_image(path: Path) -> tuple[np.ndarray | None, tuple[int, int]]:
    """Decode an image completely: (None when the file can be copied as it is, else the (H, W, 3) uint8 RGB
    pixels upright; (H, W) as displayed, i.e. after the EXIF orientation)."""
    with strict_decoding(), Image.open(path) as image:
        image.load()
        orientation = image.getexif().get(ORIENTATION, 1)
        plain = image.mode == 'RGB' and orientation == 1 and (
            image.format == 'JPEG' or image.format == 'PNG' and _png_bit_depth(path) == 8)
        if plain:
            return None, (image.height, image.width)
        rgb = to_rgb(ImageOps.exif_transpose(image), path)
        return rgb, rgb.shape[:2]


def read_mask(path: Path) -> np.ndarray:
    """Decode a mask completely: (H, W) integer values (palette indices for a palette PNG)."""
    with strict_decoding(), Image.open(path) as mask:
        mask.load()
        if mask.mode not in LABEL_MODES:
            raise LoGoSegUserError(f'mask {path} is a {mask.mode} image, not a single-channel map of class values; '
                                   'save the values as a greyscale (8/16-bit) or palette PNG, or a TIFF')
        return np.asarray(mask).astype(np.int64 if mask.mode == 'I' else np.int32)


def to_train_ids(raw: np.ndarray, pair: Pair) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(trainId map (H, W) uint8/uint16, its class mask (H, W) bool, problems): raw ``ignore_index`` (and 0
    with ``reduce_zero_label``) -> ``out_ignore``, raw v -> v (v-1), values outside the classes -> a problem
    listing them (raw values) with their pixel counts."""
    ignored = raw == pair.ignore_index
    classes = raw
    if pair.reduce_zero_label:
        ignored |= raw == 0
        classes = raw - 1
    valid = ~ignored & (classes >= 0) & (classes < pair.num_classes)
    bad = ~ignored & ~valid
    problems = []
    if bad.any():
        values, counts = np.unique(raw[bad], return_counts=True)
        shown = ', '.join(f'{v} ({c} px)' for v, c in zip(values[:8].tolist(), counts[:8].tolist()))
        more = f' and {len(values) - 8} more' if len(values) > 8 else ''
        reduced = ' after reduce_zero_label' if pair.reduce_zero_label else ''
        problems.append(f'mask {pair.mask} holds values that are neither a class (0..{pair.num_classes - 1}'
                        f'{reduced}) nor ignore_index {pair.ignore_index}: {shown}{more}; fix the mask, add the '
                        'classes to the class file or set ignore_index')
    dtype = np.uint8 if pair.out_ignore == 255 else np.uint16
    return np.where(valid, classes, pair.out_ignore).astype(dtype), valid, problems


def convert(pair: Pair, root: Path) -> dict:
    """Check one pair and, when it has no problem, write its image and trainId map below ``root``.

    Returns ``{'problems': [...]}``, or for a good pair also ``item`` (image, label paths relative to ``root``),
    ``size`` [h, w], ``classes`` ([class ids present], [their pixel counts]) and ``ignored`` (pixel count).
    """
    problems = []
    rgb = size = raw = None
    try:
        rgb, size = read_image(Path(pair.image))
    except LoGoSegUserError as err:
        problems.append(str(err))
    except Exception as err:  # noqa: BLE001  PIL's decoders raise OSError, SyntaxError, ValueError, zlib.error ...
        problems.append(f'image {read_failed(pair.image, err, FIX_FILE)}')
    try:
        raw = read_mask(Path(pair.mask))
    except LoGoSegUserError as err:
        problems.append(str(err))
    except Exception as err:  # noqa: BLE001
        problems.append(f'mask {read_failed(pair.mask, err, FIX_FILE)}')
    if size is not None and raw is not None and tuple(size) != raw.shape:
        problems.append(f'mask {pair.mask} is {raw.shape[1]}x{raw.shape[0]} but its image {pair.image} is '
                        f'{size[1]}x{size[0]} (as displayed, after its EXIF orientation); the mask must cover the '
                        'image pixel for pixel')
    if raw is not None and pair.num_classes is not None:
        label, valid, found = to_train_ids(raw, pair)
        problems += found
    if raw is None or pair.num_classes is None or problems:
        return {'problems': problems}
    ext = Path(pair.image).suffix if rgb is None else '.png'
    item = [f'{pair.split}/images/{pair.key}{ext}', f'{pair.split}/labels/{pair.key}.png']
    (root / item[0]).parent.mkdir(parents=True, exist_ok=True)
    if rgb is None:
        shutil.copyfile(pair.image, root / item[0])
    else:
        Image.fromarray(rgb).save(root / item[0])
    write_png(root / item[1], label)
    counts = np.bincount(label[valid].ravel())
    present = np.flatnonzero(counts)
    return {'problems': [], 'item': item, 'size': list(size), 'classes': [present.tolist(), counts[present].tolist()],
            'ignored': int(valid.size - valid.sum())}


# ---------------------------------------------------------------- the whole dataset

def manifest(decl: Declaration, classes: list[str], out_ignore: int, results: list[dict]) -> dict:
    """``manifest.json`` without its digest: per split the image count, ``items`` ([image, label] relative to
    the output, sorted), ``class_pixels`` / ``class_images`` (per class: pixels, images showing it),
    ``ignored_pixels``, ``sizes`` (element-wise min and max of [h, w])."""
    splits = {}
    for split in decl.splits:
        done = [r for r in results if r['item'][0].startswith(f'{split}/')]
        pixels, images = np.zeros(len(classes), np.int64), np.zeros(len(classes), np.int64)
        for result in done:
            present, counts = result['classes']
            pixels[present] += counts
            images[present] += 1
        sizes = np.array([r['size'] for r in done])
        splits[split] = {'images': len(done), 'items': [r['item'] for r in done],
                         'class_pixels': pixels.tolist(), 'class_images': images.tolist(),
                         'ignored_pixels': sum(r['ignored'] for r in done),
                         'sizes': {'min': sizes.min(axis=0).tolist(), 'max': sizes.max(axis=0).tolist()}}
    return {'name': decl.name, 'classes': classes, 'ignore_index': out_ignore, 'eval_split': decl.eval_split,
            'splits': splits, 'digest': None, 'source': decl.source()}


def finish(root: Path, results: list[dict], decl: Declaration, classes: list[str], out_ignore: int,
           problems: list[str], out: Path) -> None:
    """Plan step after every pair: raise :class:`ProblemsFound` with the layout problems and every pair's (the
    output is then discarded), else write ``classes.txt`` and ``manifest.json`` below ``root``."""
    problems = problems + [line for result in results for line in result['problems']]
    if problems:
        raise ProblemsFound(summary(decl, out, len(problems)), problems)
    (root / CLASS_FILE).write_text(''.join(f'{line}\n' for line in classes), encoding='utf-8')
    data = manifest(decl, classes, out_ignore, results)
    data['digest'] = content_digest(root, skip=(MANIFEST, ))
    (root / MANIFEST).write_text(json.dumps(data, indent=1) + '\n', encoding='utf-8')


def report_path(out: Path) -> Path:
    """Where the problems of a run go: ``<out>.problems.txt`` beside the output, never inside it."""
    return out.with_name(f'{out.name}.problems.txt')


def summary(decl: Declaration, out: Path, count: int) -> str:
    """The last line printed for a dataset with problems: how many, where they are listed."""
    return (f'{decl.name}: {count} problem{"s" * (count != 1)} in {decl.raw_dir}, every one listed in '
            f'{report_path(out)}; nothing was written to {out}: fix them and run again')


def build_plan(decl: Declaration, out: Path) -> tuple[Plan, list[str]]:
    """The preparation plan and the problems found before decoding (layout, class file)."""
    raw = decl.raw_dir
    if not raw.is_dir():
        return Plan(decl.name, raw, out, [], convert, [], {}, []), [
            f'raw folder {raw} is missing; put the dataset there or fix datasets.{decl.name}.raw']
    class_file = raw / decl.classes
    classes, problems = read_classes(class_file)
    num_classes = len(classes) if classes is not None else None
    out_ignore = 255 if num_classes is not None and num_classes <= 255 else 65535
    tasks, inputs = [], [class_file] if class_file.is_file() else []
    for split, spec in decl.splits.items():
        pairs, files, found = pair_split(decl, split)
        problems += found
        inputs += files
        tasks += [Pair(split, key, str(image), str(mask), num_classes, spec.ignore_index, spec.reduce_zero_label,
                       out_ignore) for key, image, mask in pairs]
    # the layout problems are settings: a run that has them never matches the marker of a clean one
    settings = {'source': decl.source(), 'out_ignore': out_ignore, 'problems': problems,
                'pillow': Image.__version__}  # re-encoded PNG bytes depend on the encoder version
    step = partial(finish, decl=decl, classes=classes, out_ignore=out_ignore, problems=problems, out=out)
    return Plan(decl.name, raw, out, tasks, convert, inputs, settings, [Path(__file__)], finish=step), problems


def prepare(decl: Declaration, out: Path, workers: int = 1) -> bool:
    """Check every pair and write the prepared dataset to ``out``; False when it was already up to date.

    Raises:
        ProblemsFound: the data has problems; they are listed in :func:`report_path` and ``out`` is untouched.
    """
    report = report_path(out)
    plan, problems = build_plan(decl, out)
    try:
        if not plan.tasks:  # the layout problems say why there is nothing to decode
            raise ProblemsFound(summary(decl, out, len(problems)), problems)
        done = execute(plan, workers)
    except ProblemsFound as err:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(''.join(f'{line}\n' for line in err.problems), encoding='utf-8')
        raise
    report.unlink(missing_ok=True)  # from an earlier run on data since fixed
    return done


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m logoseg.tools.prepare.declared',
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument('name', help='the dataset, a key of datasets: in params.yaml')
    parser.add_argument('--params', type=Path, default=Path('params.yaml'),
                        help='the file declaring it (default ./params.yaml); raw paths are relative to its folder')
    parser.add_argument('--out', type=Path, help='output folder (default: prepared/datasets/<name> beside --params)')
    parser.add_argument('--workers', type=positive_int,
                        help='worker processes (default: prepare.workers of --params, else 1)')
    args = parser.parse_args(argv)

    def job() -> None:
        decl = load_declaration(args.name, args.params)
        workers = args.workers or _params_workers(args.params)
        prepare(decl, args.out or args.params.parent / 'prepared' / 'datasets' / decl.name, workers)

    return run_main(job)


def _params_workers(params: Path) -> int:
    """``prepare.workers`` of params.yaml, else 1."""
    data = yaml.safe_load(params.read_text(encoding='utf-8')) or {}
    workers = (data.get('prepare') or {}).get('workers', 1)
    if type(workers) is not int or workers < 1:
        raise LoGoSegUserError(f'prepare.workers in {params} is {workers!r}; give an integer >= 1')
    return workers


__all__ = ['Declaration', 'ProblemsFound', 'SplitSpec', 'load_declaration', 'parse_declaration', 'prepare']

if __name__ == '__main__':
    sys.exit(main())
