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

from .common import (INVALID, LabelSpec, Plan, execute, load_params, make_parser, parse_args, run_main,
                     split_folders_plan)

SOURCE = ('ADEChallengeData2016.zip, http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip '
          '(https://ade20k.csail.mit.edu/), unzipped into data/')
FIX = 're-download ADEChallengeData2016.zip from http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip'
SPLITS = ('validation', 'training')
LABELS = LabelSpec(np.uint8, 150, 255)

LUT = np.full(256, INVALID, np.int32)
LUT[0] = 255
LUT[1:151] = np.arange(150)


def build_plan(raw: Path, out: Path, splits: Sequence[str] = SPLITS) -> Plan:
    return split_folders_plan('ade150', raw, out, splits, 'A-150', SOURCE, LUT, LABELS, Path(__file__),
                              (FIX, FIX))


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
