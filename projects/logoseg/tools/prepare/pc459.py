"""PC-459: PASCAL-Context full labels -> prepared/pc459/val/<id>.tif (uint16 TIFF, ignore 65535).

``LabelMap`` of ``<raw>/trainval/<id>.mat`` holds 1..459 (the order of ``vocab/pc459.json``) and 0 for
unlabelled pixels: v becomes v-1 and 0 becomes 65535 (no uint16 wrap-around). Ids from
``vocab/pascalcontext_val.txt`` (or ``--ids``); images stay in ``<raw>/JPEGImages``.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
import scipy.io

from logoseg.utils.errors import LoGoSegUserError

from .common import (LabelSpec, Plan, check_files, check_image, execute, load_params, make_parser, parse_args,
                     read_failed, remap, require, run_main, write_tiff)

SOURCE = ('PASCAL-Context trainval.tar.gz (trainval/<id>.mat) from https://www.cs.stanford.edu/~roozbeh/'
          'pascal-context/ into data/VOCdevkit/VOC2010/, images from VOCtrainval_03-May-2010.tar, '
          'http://host.robots.ox.ac.uk/pascal/VOC/voc2010/')
LABELS = LabelSpec(np.uint16, 459, 65535)
FIX_MAT = 're-download trainval.tar.gz from https://www.cs.stanford.edu/~roozbeh/pascal-context/'
FIX_IMAGE = 're-download VOCtrainval_03-May-2010.tar from http://host.robots.ox.ac.uk/pascal/VOC/voc2010/'

LUT = np.empty(460, np.int32)
LUT[0] = 65535
LUT[1:] = np.arange(459)


def val_ids(path: Path | None = None) -> list[str]:
    """PASCAL-Context validation ids (5104): ``path``, or the list shipped in ``logoseg/vocab``."""
    if path is None:
        text = resources.files('logoseg').joinpath('vocab', 'pascalcontext_val.txt').read_text(encoding='utf-8')
    else:
        text = require(path, 'id list', 'a text file with one image id per line').read_text(encoding='utf-8')
    ids = text.split()
    if not ids:
        raise LoGoSegUserError(f'id list {path} is empty; give one image id per line')
    return ids


def convert(task: tuple[str, str, str], root: Path) -> None:
    """task = (raw .mat path, raw image path, output path relative to root)."""
    src, image, dst = task
    try:
        mat = scipy.io.loadmat(src)
    except Exception as err:  # noqa: BLE001  truncated / not MATLAB: OSError, ValueError, MatReadError, zlib.error ...
        raise read_failed(src, err, FIX_MAT) from None
    labels = mat.get('LabelMap')
    if not isinstance(labels, np.ndarray) or labels.ndim != 2 or labels.dtype.kind not in 'ui':
        raise LoGoSegUserError(f'{src} has no 2-D integer LabelMap; it is not a PASCAL-Context annotation, '
                               f'{FIX_MAT}')
    label = remap(labels.astype(np.int64), LUT, LABELS, src)
    check_image(Path(image), label.shape, src, FIX_IMAGE)
    write_tiff(root / dst, label)


def build_plan(raw: Path, out: Path, ids: Sequence[str]) -> Plan:
    require(raw / 'trainval', 'PASCAL-Context trainval annotations', SOURCE)
    mats = [raw / 'trainval' / f'{i}.mat' for i in ids]
    images = [raw / 'JPEGImages' / f'{i}.jpg' for i in ids]
    check_files(mats, 'PASCAL-Context annotation', SOURCE)
    check_files(images, 'VOC2010 image', SOURCE)
    tasks = [(str(m), str(i), f'val/{m.stem}.tif') for m, i in zip(mats, images, strict=True)]
    return Plan('pc459', raw, out, tasks, convert, [*mats, *images], {'ids': list(ids)}, [Path(__file__)])


def prepare(raw: Path, out: Path, workers: int = 1, ids_file: Path | None = None) -> bool:
    """Write prepared/pc459; False when it was already up to date."""
    return execute(build_plan(raw, out, val_ids(ids_file)), workers)


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser('pc459', __doc__, load_params('pc459'))
    parser.add_argument('--ids', type=Path, help='validation id list (default: the shipped pascalcontext_val.txt)')
    args = parse_args(parser, argv)
    return run_main(lambda: prepare(args.raw, args.out, args.workers, args.ids))


if __name__ == '__main__':
    sys.exit(main())
