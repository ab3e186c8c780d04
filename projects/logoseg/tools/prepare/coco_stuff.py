"""COCO-Stuff-171: stuffthingmaps -> prepared/coco_stuff171/<split>/<id>.png (uint8, ignore 255).

The stuffthingmaps PNGs hold COCO category id - 1 (0 = person ... 181 = wood) and 255 = unlabelled. 171 of the
182 ids are used (80 things, 91 stuff); their rank is the trainId (the order of ``vocab/coco.json``).
Everything else (the 11 unused thing ids, 255, stray values) becomes 255. Images stay in
``<raw>/images/<split>``.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .common import (LabelSpec, Plan, execute, load_params, make_parser, parse_args, run_main,
                     split_folders_plan)

SOURCE = ('COCO-Stuff (https://github.com/nightrome/cocostuff): images train2017.zip/val2017.zip from '
          'http://images.cocodataset.org/zips/ into data/cocostuff/images/, stuffthingmaps_trainval2017.zip from '
          'http://calvin.inf.ed.ac.uk/wp-content/uploads/data/cocostuffdataset/stuffthingmaps_trainval2017.zip '
          'into data/cocostuff/annotations/')
FIXES = ('re-download stuffthingmaps_trainval2017.zip from http://calvin.inf.ed.ac.uk/wp-content/uploads/data/'
         'cocostuffdataset/stuffthingmaps_trainval2017.zip',
         're-download train2017.zip / val2017.zip from http://images.cocodataset.org/zips/')
SPLITS = ('train2017', 'val2017')
LABELS = LabelSpec(np.uint8, 171, 255)

# PNG values (= COCO id - 1) of the 171 classes: the 80 COCO things, then the 91 stuff classes 92..182.
USED = np.r_[0:11, 12:25, 26:28, 30:44, 45:65, 66, 69, 71:82, 83:90, 91:182]
assert len(USED) == LABELS.num_classes

LUT = np.full(256, 255, np.int32)
LUT[USED] = np.arange(len(USED))


def build_plan(raw: Path, out: Path, splits: Sequence[str] = SPLITS) -> Plan:
    return split_folders_plan('coco_stuff171', raw, out, splits, 'COCO-Stuff', SOURCE, LUT, LABELS, Path(__file__),
                              FIXES)


def prepare(raw: Path, out: Path, workers: int = 1, splits: Sequence[str] = SPLITS) -> bool:
    """Write prepared/coco_stuff171; False when it was already up to date."""
    return execute(build_plan(raw, out, splits), workers)


def main(argv: Sequence[str] | None = None) -> int:
    params = load_params('coco_stuff')
    parser = make_parser('coco_stuff', __doc__, params)
    parser.add_argument('--splits', nargs='+', default=params.get('splits', list(SPLITS)),
                        help=f'any of {", ".join(SPLITS)} (default: prepare.coco_stuff.splits, else both)')
    args = parse_args(parser, argv, {'splits': SPLITS})
    return run_main(lambda: prepare(args.raw, args.out, args.workers, args.splits))


if __name__ == '__main__':
    sys.exit(main())
