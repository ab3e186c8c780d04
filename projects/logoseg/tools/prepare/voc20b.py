"""PAS-20b: VOC2012 SegmentationClassAug (val ids) -> prepared/voc20b/val/<id>.png (uint8, ignore 255).

Raw 0 (background) becomes class 20, 1..20 become 0..19, 255 (void) stays: 21 scored classes. The model is
prompted with the 59 names of ``vocab/voc20b.json`` and predictions >= 20 count as background. Same raw input
and ids as :mod:`.voc20`.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from . import voc20


def main(argv: Sequence[str] | None = None) -> int:
    return voc20.main(argv, name='voc20b', doc=__doc__)


if __name__ == '__main__':
    sys.exit(main())
