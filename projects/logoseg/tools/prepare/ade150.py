"""A-150: ADEChallengeData2016 annotations -> prepared/ade150/<split>/<id>.png (uint8, ignore 255).

Raw value v of the greyscale PNGs is class v-1 (the order of ``vocab/ade150.json``); 0 (unlabelled) becomes
255. Splits: ``validation`` (the benchmark) and ``training`` (the Table-5 training set). Images stay in
``<raw>/images/<split>``.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .common import (INVALID, LabelSpec, Plan, check_files, execute, list_files, load_params, make_parser, parse_args,
                     read_label, remap, run_main, write_png)

SOURCE = ('ADEChallengeData2016.zip, http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip '
          '(https://ade20k.csail.mit.edu/), unzipped into data/')
SPLITS = ('validation', 'training')
LABELS = LabelSpec(np.uint8, 150, 255)

LUT = np.full(256, INVALID, np.int32)
LUT[0] = 255
LUT[1:151] = np.arange(150)


def convert(task: tuple[str, str], root: Path) -> None:
    """task = (raw annotation path, output path relative to root)."""
    src, dst = task
    write_png(root / dst, remap(read_label(Path(src)), LUT, LABELS, src))


def build_plan(raw: Path, out: Path, splits: Sequence[str] = SPLITS) -> Plan:
    tasks, inputs = [], []
    for split in splits:
        labels = list_files(raw / 'annotations' / split, '.png', f'A-150 {split} annotations', SOURCE)
        check_files((raw / 'images' / split / f'{p.stem}.jpg' for p in labels), f'A-150 {split} image', SOURCE)
        tasks += [(str(p), f'{split}/{p.name}') for p in labels]
        inputs += labels
    return Plan('ade150', raw, out, tasks, convert, inputs, {'splits': list(splits)}, [Path(__file__)])


def prepare(raw: Path, out: Path, workers: int = 1, splits: Sequence[str] = SPLITS) -> bool:
    """Write prepared/ade150; False when it was already up to date."""
    return execute(build_plan(raw, out, splits), workers)


def main(argv: Sequence[str] | None = None) -> int:
    params = load_params('ade150')
    parser = make_parser('ade150', __doc__, params)
    parser.add_argument('--splits', nargs='+', default=params.get('splits', list(SPLITS)),
                        help=f'any of {", ".join(SPLITS)} (default: prepare.ade150.splits, else both)')
    args = parse_args(parser, argv, {'splits': SPLITS})
    return run_main(lambda: prepare(args.raw, args.out, args.workers, args.splits))


if __name__ == '__main__':
    sys.exit(main())
