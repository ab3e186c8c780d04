"""Users' own datasets (prepare.declared): every raw layout variant becomes exact trainIds and RGB images; every
bad input is one line of a complete problem report, and nothing is written."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml
from PIL import Image, ImageOps

from logoseg.tools.prepare import common, declared
from logoseg.utils.errors import LoGoSegUserError

CLASSES = ('sky', 'grass, lawn', 'sand', 'Water, sea')


def save(path: Path, array: np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def picture(seed: int, height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8: smooth gradients (JPEG keeps them) with a per-seed offset, different in every corner."""
    yy, xx = np.mgrid[:height, :width]
    channels = [yy * 200 // height, xx * 200 // width, (yy + 2 * xx) * 60 // (height + width)]
    return ((np.stack(channels, axis=2) + seed * 17) % 256).astype(np.uint8)


def classes_map(seed: int, height: int, width: int, num_classes: int = len(CLASSES)) -> np.ndarray:
    """(H, W) int64 class indices, -1 where ignored (about 10 % of the pixels)."""
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, num_classes, (height, width))
    cls[rng.random((height, width)) < 0.1] = -1
    return cls


def encode(cls: np.ndarray, ignore: int = 255, reduce_zero_label: bool = False, dtype=np.uint8) -> np.ndarray:
    """Raw mask values of a class map: ignored -> ``ignore`` (0 with reduce_zero_label), class c -> c (c+1)."""
    return np.where(cls < 0, 0 if reduce_zero_label else ignore, cls + reduce_zero_label).astype(dtype)


def train_ids(cls: np.ndarray, ignore: int = 255) -> np.ndarray:
    return np.where(cls < 0, ignore, cls)


def wide(grey: np.ndarray) -> np.ndarray:
    """The 16-bit greyscale pixels of a ``png16`` image (not a multiple of 257: the scaling rounds)."""
    return np.minimum(grey.astype(np.int64) * 257 + 100, 65535)


def write_image(path: Path, rgb: np.ndarray, kind: str) -> Path:
    """Save ``rgb`` (as displayed) as a ``kind`` file; returns it (``path`` plus the kind's suffix)."""
    grey = np.asarray(Image.fromarray(rgb).convert('L'))
    if kind == 'jpeg':
        return save(path.with_suffix('.jpg'), rgb, quality=95)
    if kind == 'exif':  # stored turned, displayed upright through EXIF orientation 6
        exif = Image.Exif()
        exif[0x0112] = 6
        return save(path.with_suffix('.jpg'), np.rot90(rgb), quality=95, subsampling=0, exif=exif.tobytes())
    if kind == 'grey':
        return save(path.with_suffix('.png'), grey)
    if kind == 'rgba':
        return save(path.with_suffix('.png'), np.dstack([rgb, np.full(grey.shape, 40, np.uint8)]))
    if kind == 'png16':
        return save(path.with_suffix('.png'), wide(grey).astype(np.uint16))
    return save(path.with_suffix(f'.{kind}'), rgb)  # png, bmp


def write_mask(path: Path, cls: np.ndarray, kind: str, ignore: int = 255, reduce_zero_label: bool = False) -> Path:
    if kind == 'palette':
        image = Image.fromarray(encode(cls, ignore))
        image.putpalette(list(np.random.default_rng(0).integers(0, 256, 768)))
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path.with_suffix('.png'))
        assert Image.open(path.with_suffix('.png')).mode == 'P'
        return path.with_suffix('.png')
    if kind in ('tif', 'tiff'):
        dtype = np.uint16 if ignore > 255 else np.uint8
        path.parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(path.with_suffix(f'.{kind}'), encode(cls, ignore, dtype=dtype), compression='zlib')
        return path.with_suffix(f'.{kind}')
    dtype = np.uint16 if kind == '16bit' else np.uint8
    return save(path.with_suffix('.png'), encode(cls, ignore, reduce_zero_label, dtype))


# ---------------------------------------------------------------- every layout variant

SPLITS = {  # split -> its options beside the folders
    'train': {},
    'val': {'ignore_index': 65535},
    'tif8': {'seg_map_suffix': '.tif'},
    'tif16': {'seg_map_suffix': '.tiff', 'ignore_index': 65535},
    'test': {'reduce_zero_label': True},
}
# variant -> (split, key, image kind, mask kind, displayed (H, W))
VARIANTS = {
    'jpeg': ('train', 'jpeg', 'jpeg', 'palette', (16, 20)),
    'png': ('train', 'sub/png', 'png', '8bit', (20, 16)),
    'greyscale': ('train', 'grey', 'grey', 'palette', (18, 18)),
    'rgba': ('train', 'rgba', 'rgba', '8bit', (16, 24)),
    'png16': ('train', 'sub/deeper/png16', 'png16', '8bit', (24, 16)),
    'exif-rotated': ('train', 'exif', 'exif', 'palette', (16, 28)),
    'bmp': ('train', 'bmp', 'bmp', '8bit', (17, 19)),
    'mask-16bit': ('val', 'a', 'jpeg', '16bit', (32, 24)),
    'mask-tiff-8bit': ('tif8', 'a', 'png', 'tif', (20, 20)),
    'mask-tiff-16bit': ('tif16', 'a', 'jpeg', 'tiff', (24, 32)),
    'reduce-zero-label': ('test', 'a', 'png', '8bit', (16, 16)),
}


@pytest.fixture(scope='module')
def mixed(tmp_path_factory):
    """Every variant in one dataset, prepared once: (raw root, output, {variant: (class map, rgb, image file)})."""
    root = tmp_path_factory.mktemp('mixed')
    raw = root / 'datasets' / 'mixed'
    raw.mkdir(parents=True)
    (raw / 'classes.txt').write_text('\n'.join(CLASSES) + '\n\n')
    written = {}
    for seed, (variant, (split, key, image_kind, mask_kind, (h, w))) in enumerate(VARIANTS.items()):
        cls, rgb = classes_map(seed, h, w), picture(seed, h, w)
        image = write_image(raw / 'images' / split / key, rgb, image_kind)
        options = SPLITS[split]
        write_mask(raw / 'masks' / split / key, cls, mask_kind, options.get('ignore_index', 255),
                   options.get('reduce_zero_label', False))
        written[variant] = (cls, rgb, image)
    splits = {split: {'img_path': f'images/{split}', 'seg_map_path': f'masks/{split}', **options}
              for split, options in SPLITS.items()}
    decl = declared.parse_declaration('mixed', {'raw': 'datasets/mixed', 'splits': splits}, root)
    out = root / 'prepared' / 'datasets' / 'mixed'
    assert declared.prepare(decl, out) is True
    return raw, out, written


@pytest.mark.parametrize('variant', list(VARIANTS))
def test_each_layout_variant_becomes_train_ids_and_rgb(mixed, variant):
    raw, out, written = mixed
    split, key, image_kind, _, (h, w) = VARIANTS[variant]
    cls, rgb, image_file = written[variant]
    manifest = json.loads((out / 'manifest.json').read_text())
    items = dict((Path(i).with_suffix('').as_posix(), (i, label)) for i, label in manifest['splits'][split]['items'])
    image_path, label_path = items[f'{split}/images/{key}']
    assert label_path == f'{split}/labels/{key}.png'
    label = Image.open(out / label_path)
    assert label.mode == 'L'
    np.testing.assert_array_equal(np.asarray(label), train_ids(cls))
    prepared = Image.open(out / image_path)
    assert prepared.mode == 'RGB' and prepared.size == (w, h)
    if image_kind in ('jpeg', 'png'):  # plain 8-bit RGB: the raw file itself
        assert image_path.endswith(image_file.suffix) and (out / image_path).read_bytes() == image_file.read_bytes()
        return
    assert image_path.endswith('.png')
    grey = np.asarray(Image.fromarray(rgb).convert('L'))[..., None].repeat(3, axis=2)
    expected = {
        'grey': grey,
        'rgba': rgb,  # alpha dropped, colours as stored
        'png16': (wide(grey) * 255 + 32767) // 65535,
        'bmp': rgb,
        'exif': np.asarray(ImageOps.exif_transpose(Image.open(image_file)).convert('RGB')),
    }[image_kind]
    np.testing.assert_array_equal(np.asarray(prepared), expected)
    if image_kind == 'exif':  # upright: close to the picture as drawn (JPEG error only)
        assert np.abs(np.asarray(prepared).astype(int) - rgb).mean() < 3


def test_the_manifest_records_counts_sizes_and_the_resolved_declaration(mixed):
    raw, out, written = mixed
    manifest = json.loads((out / 'manifest.json').read_text())
    assert list(manifest) == ['name', 'classes', 'ignore_index', 'eval_split', 'splits', 'digest', 'source']
    assert manifest['name'] == 'mixed' and manifest['classes'] == list(CLASSES) and manifest['ignore_index'] == 255
    assert (out / 'classes.txt').read_text() == ''.join(f'{c}\n' for c in CLASSES)
    assert manifest['digest'] == common.content_digest(out, skip=('manifest.json', ))
    assert manifest['source']['splits']['tif16'] == {
        'img_path': 'images/tif16', 'seg_map_path': 'masks/tif16', 'img_suffix': None, 'seg_map_suffix': '.tiff',
        'ignore_index': 65535, 'reduce_zero_label': False}
    assert manifest['source']['raw'] == 'datasets/mixed' and manifest['eval_split'] == 'val'
    train = [v for v, spec in VARIANTS.items() if spec[0] == 'train']
    stats = manifest['splits']['train']
    maps = [written[v][0] for v in train]
    assert stats['images'] == len(train) == len(stats['items'])
    assert stats['class_pixels'] == [sum(int((m == c).sum()) for m in maps) for c in range(len(CLASSES))]
    assert stats['class_images'] == [sum(bool((m == c).any()) for m in maps) for c in range(len(CLASSES))]
    assert stats['ignored_pixels'] == sum(int((m < 0).sum()) for m in maps)
    sizes = np.array([VARIANTS[v][4] for v in train])
    assert stats['sizes'] == {'min': sizes.min(0).tolist(), 'max': sizes.max(0).tolist()}
    for path in out.rglob('*'):  # every file is the manifest's, the class list or the marker
        assert path.is_dir() or path.name in ('manifest.json', 'classes.txt', common.MARKER) or any(
            path.relative_to(out).as_posix() in item for s in manifest['splits'].values() for item in s['items'])


def test_two_datasets_side_by_side_and_many_classes_become_16_bit(tmp_path):
    """One params.yaml declares both; B has 300 classes, so its labels are 16-bit with ignore 65535."""
    many = [f'class {i}' for i in range(300)]
    for name, classes in (('a', CLASSES), ('b', many)):
        raw = tmp_path / 'datasets' / name
        raw.mkdir(parents=True)
        (raw / 'classes.txt').write_text('\n'.join(classes))
        cls = classes_map(7, 16, 20, len(classes))
        write_image(raw / 'img' / 'x', picture(1, 16, 20), 'jpeg')
        write_mask(raw / 'ann' / 'x', cls, '16bit', 65535)
    params = {'datasets': {name: {'raw': f'datasets/{name}', 'eval_split': 'all', 'splits': {
        'all': {'img_path': 'img', 'seg_map_path': 'ann', 'ignore_index': 65535}}} for name in 'ab'}}
    (tmp_path / 'params.yaml').write_text(yaml.safe_dump(params))
    outs = {name: tmp_path / 'prepared' / 'datasets' / name for name in 'ab'}
    assert declared.prepare(declared.load_declaration('a', tmp_path / 'params.yaml'), outs['a'])
    before = {p: p.stat().st_mtime_ns for p in outs['a'].rglob('*')}
    assert declared.prepare(declared.load_declaration('b', tmp_path / 'params.yaml'), outs['b'])
    assert {p: p.stat().st_mtime_ns for p in outs['a'].rglob('*')} == before
    label_a = np.asarray(Image.open(outs['a'] / 'all' / 'labels' / 'x.png'))
    label_b = np.asarray(Image.open(outs['b'] / 'all' / 'labels' / 'x.png'))
    assert label_a.dtype == np.uint8 and label_b.dtype == np.uint16
    np.testing.assert_array_equal(label_b, train_ids(classes_map(7, 16, 20, 300), 65535))
    assert json.loads((outs['b'] / 'manifest.json').read_text())['ignore_index'] == 65535
    assert len(json.loads((outs['b'] / 'manifest.json').read_text())['splits']['all']['class_pixels']) == 300


def test_a_rerun_with_unchanged_inputs_rewrites_nothing(tmp_path):
    raw = good_dataset(tmp_path)
    out = tmp_path / 'out'
    assert declared.prepare(declare(tmp_path), out) is True
    before = {p: p.stat().st_mtime_ns for p in out.rglob('*')}
    assert declared.prepare(declare(tmp_path), out) is False
    assert {p: p.stat().st_mtime_ns for p in out.rglob('*')} == before
    assert declared.prepare(declare(tmp_path, img_suffix='.png'), out) is True  # another setting: prepared again
    (raw / 'classes.txt').write_text('sky\ngrass\nsand\nwater\n')
    assert declared.prepare(declare(tmp_path, img_suffix='.png'), out) is True  # another input
    assert (out / 'classes.txt').read_text() == 'sky\ngrass\nsand\nwater\n'


# ---------------------------------------------------------------- bad inputs

def good_dataset(root: Path) -> Path:
    """datasets/good: train (3 JPEG + 8-bit masks) and val (2 PNG + 16-bit masks, ignore 65535)."""
    raw = root / 'datasets' / 'good'
    raw.mkdir(parents=True)
    (raw / 'classes.txt').write_text('\n'.join(CLASSES) + '\n')
    for split, count, kind, mask in (('train', 3, 'jpeg', '8bit'), ('val', 2, 'png', '16bit')):
        for i in range(count):
            write_image(raw / 'images' / split / f'{split}{i}', picture(i, 16, 20), kind)
            write_mask(raw / 'masks' / split / f'{split}{i}', classes_map(i, 16, 20), mask,
                       65535 if mask == '16bit' else 255)
    return raw


def declare(root: Path, **val_options) -> declared.Declaration:
    splits = {'train': {'img_path': 'images/train', 'seg_map_path': 'masks/train'},
              'val': {'img_path': 'images/val', 'seg_map_path': 'masks/val', 'ignore_index': 65535, **val_options}}
    return declared.parse_declaration('good', {'raw': 'datasets/good', 'splits': splits}, root)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])


def bad_values(raw: Path) -> None:
    cls = classes_map(0, 16, 20)
    cls[0, :3], cls[1, :2] = 7, 9
    write_mask(raw / 'masks/train/train0', cls, '8bit')


def exif_mismatch(raw: Path) -> None:
    """The mask matches the stored pixels, not the image as displayed."""
    write_image(raw / 'images/train/train1', picture(1, 20, 16), 'exif')  # stored 16x20, displayed 20x16


# case -> (damage, words of the problem line, the file it names, relative to the raw root)
CASES = {
    'raw root missing': (lambda raw: shutil.rmtree(raw), 'raw folder', ''),
    'split folder missing': (lambda raw: shutil.rmtree(raw / 'masks/val'), 'mask folder', 'masks/val'),
    'class file missing': (lambda raw: (raw / 'classes.txt').unlink(), 'is missing', 'classes.txt'),
    'class file empty': (lambda raw: (raw / 'classes.txt').write_text('\n \n'), 'is empty', 'classes.txt'),
    'class file blank line': (lambda raw: (raw / 'classes.txt').write_text('sky\n\ngrass\nsand\nwater\n'),
                              'line 2 (label 1) is blank', 'classes.txt'),
    'duplicate first names': (lambda raw: (raw / 'classes.txt').write_text('sky\nGrass, lawn\n grass \nsand\n'),
                              "lines 2 'Grass, lawn' and 3 'grass' are both prompted as 'grass'", 'classes.txt'),
    'empty split': (lambda raw: [p.unlink() for p in sorted((raw / 'images/val').iterdir()) +
                                 sorted((raw / 'masks/val').iterdir())], 'split val is empty', 'images/val'),
    'image without mask': (lambda raw: (raw / 'masks/train/train1.png').unlink(), 'has no mask',
                           'images/train/train1.jpg'),
    'mask without image': (lambda raw: (raw / 'images/val/val1.png').unlink(), 'has no image', 'masks/val/val1.png'),
    'two images, one name': (lambda raw: write_image(raw / 'images/train/train2', picture(0, 16, 20), 'png'),
                             'have the same name', 'images/train/train2.png'),
    'truncated image': (lambda raw: truncate(raw / 'images/train/train0.jpg'), 'is corrupt or truncated',
                        'images/train/train0.jpg'),
    'garbage image': (lambda raw: (raw / 'images/val/val0.png').write_bytes(os.urandom(300)),
                      'is corrupt or truncated', 'images/val/val0.png'),
    'truncated mask': (lambda raw: truncate(raw / 'masks/val/val1.png'), 'is corrupt or truncated',
                       'masks/val/val1.png'),
    'size mismatch': (lambda raw: write_mask(raw / 'masks/train/train2', classes_map(0, 16, 21), '8bit'),
                      'is 21x16 but its image', 'masks/train/train2.png'),
    'size mismatch after EXIF': (exif_mismatch, 'is 20x16 but its image', 'images/train/train1.jpg'),
    'RGB mask': (lambda raw: save(raw / 'masks/train/train0.png', picture(0, 16, 20)), 'is a RGB image',
                 'masks/train/train0.png'),
    'values outside the classes': (bad_values, 'nor ignore_index 255: 7 (3 px), 9 (2 px)', 'masks/train/train0.png'),
    '8-bit mask with ignore 65535': (lambda raw: write_mask(raw / 'masks/val/val0', classes_map(0, 16, 20), '8bit'),
                                     'nor ignore_index 65535: 255 (', 'masks/val/val0.png'),
}


@pytest.mark.parametrize('case', list(CASES))
def test_each_bad_input_is_a_reported_problem_and_nothing_is_written(tmp_path, case):
    damage, words, relative = CASES[case]
    raw = good_dataset(tmp_path)
    damage(raw)
    out = tmp_path / 'prepared' / 'datasets' / 'good'
    with pytest.raises(declared.ProblemsFound) as caught:
        declared.prepare(declare(tmp_path), out)
    problems = caught.value.problems
    hits = [line for line in problems if words in line]
    assert hits and str(raw / relative).rstrip('/') in hits[0], problems
    assert all('\n' not in line for line in problems)
    report = tmp_path / 'prepared' / 'datasets' / 'good.problems.txt'
    assert report.read_text().splitlines() == problems
    assert f'{len(problems)} problem' in str(caught.value) and str(report) in str(caught.value)
    assert not out.exists() and sorted(p.name for p in out.parent.iterdir()) == ['good.problems.txt']


def test_all_problems_are_listed_the_first_ten_printed_and_a_good_output_kept(tmp_path):
    """The command as a user runs it: 12 bad pairs and a bad class file; the earlier output stays; once the
    data is fixed, the output is replaced and the report removed."""
    raw = good_dataset(tmp_path)
    for i in range(3, 12):
        write_image(raw / 'images/train' / f'train{i}', picture(i, 16, 20), 'jpeg')
        write_mask(raw / 'masks/train' / f'train{i}', classes_map(i, 16, 20), '8bit')
    (tmp_path / 'params.yaml').write_text(yaml.safe_dump({'prepare': {'workers': 2}, 'datasets': {'good': {
        'raw': 'datasets/good', 'splits': {'train': {'img_path': 'images/train', 'seg_map_path': 'masks/train'},
                                           'val': {'img_path': 'images/val', 'seg_map_path': 'masks/val',
                                                   'ignore_index': 65535}}}}}))
    out = tmp_path / 'prepared' / 'datasets' / 'good'
    assert declared.prepare(declared.load_declaration('good', tmp_path / 'params.yaml'), out)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob('*') if p.is_file()}
    masks = sorted((raw / 'masks/train').iterdir())
    originals = {p: p.read_bytes() for p in masks}
    for path in masks:
        truncate(path)
    (raw / 'classes.txt').write_text('sky\nsky, blue\ngrass\nsand\n')
    result = subprocess.run([sys.executable, '-m', 'logoseg.tools.prepare.declared', 'good'], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    report = Path('prepared/datasets/good.problems.txt')
    problems = (tmp_path / report).read_text().splitlines()
    assert len(problems) == 13 and "lines 1 'sky' and 2 'sky, blue'" in problems[0]
    for path in masks:  # paths as the user gave them: relative to the repository root
        assert sum(line.startswith(f'mask {path.relative_to(tmp_path)} is corrupt or truncated (')
                   for line in problems) == 1
    assert lines[:10] == [f'error: {line}' for line in problems[:10]], result.stderr
    assert len(lines) == 11 and lines[10].startswith('error: good: 13 problems in datasets/good')
    assert str(report) in lines[10]
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob('*') if p.is_file()} == before
    for path, data in originals.items():
        path.write_bytes(data)
    (raw / 'classes.txt').write_text('sky\nsky blue\ngrass\nsand\n')
    assert declared.prepare(declared.load_declaration('good', tmp_path / 'params.yaml'), out, workers=2)
    assert not (tmp_path / report).exists()
    assert json.loads((out / 'manifest.json').read_text())['classes'][1] == 'sky blue'


# ---------------------------------------------------------------- the declaration

def check(entry, name='mine'):
    return declared.parse_declaration(name, entry, Path('.'))


SPLIT = {'train': {'img_path': 'i', 'seg_map_path': 'm'}}
DECLARATION_ERRORS = {
    'unknown option': ({'raw': 'r', 'splits': SPLIT, 'ignore': 0}, "datasets.mine in params.yaml has an unknown "
                                                                   "option 'ignore'; the options are raw, splits"),
    'unknown split option': ({'raw': 'r', 'splits': {'train': {'img_path': 'i', 'seg_map_path': 'm', 'size': 3}}},
                             "datasets.mine.splits.train in params.yaml has an unknown option 'size'"),
    'no raw': ({'splits': SPLIT}, 'datasets.mine in params.yaml has no raw: option'),
    'no splits': ({'raw': 'r'}, 'has no splits: option'),
    'empty splits': ({'raw': 'r', 'splits': {}}, 'datasets.mine.splits in params.yaml is {}'),
    'no mask folder': ({'raw': 'r', 'splits': {'train': {'img_path': 'i'}}},
                       'datasets.mine.splits.train.seg_map_path in params.yaml is None; give a path'),
    'ignore_index too large': ({'raw': 'r', 'splits': SPLIT, 'ignore_index': 70000},
                               'datasets.mine.ignore_index in params.yaml is 70000; give an integer 0..65535'),
    'reduce_zero_label not a bool': ({'raw': 'r', 'splits': {'train': {**SPLIT['train'], 'reduce_zero_label': 'yes'}}},
                                     "datasets.mine.splits.train.reduce_zero_label in params.yaml is 'yes'"),
    'mask suffix': ({'raw': 'r', 'splits': SPLIT, 'seg_map_suffix': '.jpg'}, 'ending in .png, .tif or .tiff'),
    'eval split': ({'raw': 'r', 'splits': SPLIT}, "datasets.mine.eval_split in params.yaml is 'val', not a split; "
                                                  'name one of train'),
    'not a mapping': ('datasets/mine', 'give a mapping with at least raw: and splits:'),
}


@pytest.mark.parametrize('case', list(DECLARATION_ERRORS))
def test_a_bad_declaration_is_one_line_naming_the_option(case):
    entry, words = DECLARATION_ERRORS[case]
    if case != 'eval split' and isinstance(entry, dict):
        entry = {'eval_split': 'train', **entry}
    with pytest.raises(LoGoSegUserError) as caught:
        check(entry)
    assert words in str(caught.value) and '\n' not in str(caught.value)


def test_names_and_defaults(tmp_path):
    with pytest.raises(LoGoSegUserError, match='bad name'):
        check({'raw': 'r', 'splits': SPLIT}, name='My-Data')
    params = tmp_path / 'params.yaml'
    params.write_text(yaml.safe_dump({'datasets': {'one': {'raw': 'r', 'splits': {'val': SPLIT['train']}},
                                                   'two': {'raw': 'r', 'splits': {'val': SPLIT['train']}}}}))
    with pytest.raises(LoGoSegUserError, match=f"no dataset 'three' in {params}; declared: one, two$"):
        declared.load_declaration('three', params)
    decl = declared.load_declaration('one', params)
    assert decl.raw_dir == tmp_path / 'r' and decl.classes == 'classes.txt' and decl.eval_split == 'val'
    assert decl.splits['val'] == declared.SplitSpec('i', 'm', None, '.png', 255, False)
    params.write_text('prepare: {}\n')
    with pytest.raises(LoGoSegUserError, match='declares no datasets'):
        declared.load_declaration('one', params)
    assert declared.main(['one', '--params', str(tmp_path / 'missing.yaml')]) == 2


def test_images_and_masks_in_one_folder_and_hidden_files_skipped(tmp_path):
    """MMSeg's suffix convention (a.jpg beside a_mask.png); macOS's ._a.jpg and .DS_Store are not data."""
    raw = tmp_path / 'datasets' / 'flat'
    raw.mkdir(parents=True)
    (raw / 'classes.txt').write_text('\n'.join(CLASSES))
    cls = classes_map(3, 16, 16)
    write_image(raw / 'all' / 'a', picture(3, 16, 16), 'jpeg')
    write_mask(raw / 'all' / 'a_mask', cls, '8bit')
    (raw / 'all' / '._a.jpg').write_bytes(b'\0\5\26\7')
    (raw / 'all' / '.DS_Store').write_bytes(b'\0')
    entry = {'raw': 'datasets/flat', 'seg_map_suffix': '_mask.png', 'eval_split': 'all',
             'splits': {'all': {'img_path': 'all', 'seg_map_path': 'all'}}}
    out = tmp_path / 'out'
    assert declared.prepare(declared.parse_declaration('flat', entry, tmp_path), out)
    manifest = json.loads((out / 'manifest.json').read_text())
    assert manifest['splits']['all']['items'] == [['all/images/a.jpg', 'all/labels/a.png']]
    np.testing.assert_array_equal(np.asarray(Image.open(out / 'all/labels/a.png')), train_ids(cls))
