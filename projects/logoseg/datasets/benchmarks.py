"""The training set and the six open-vocabulary benchmarks, read from the layout the prepare stages write.

Raw images stay under ``data/`` (DVC-tracked downloads); label maps, already in trainId form, are the
prepare stages' outputs under ``prepared/``. A split is the set of its label maps: PASCAL's JPEGImages
folder is shared by every split, so listing images would pick up unlabelled ones. Paths are relative to
``data_root`` (default: the working directory, i.e. the repository root).

``metainfo`` carries what the model and the metric need besides the scored ``classes``: ``ignore_index``
(255, or 65535 for the 16-bit A-847 / PC-459 maps), and for PAS-20b ``prompt_classes`` (the 59-name
prompt vocabulary) and ``background_index`` (prompt indices >= it are predicted as background).
"""
from __future__ import annotations

import os.path as osp
from typing import ClassVar, Optional

import mmengine.fileio as fileio
from mmseg.datasets import (ADE20KDataset, BaseSegDataset, COCOStuffDataset, LoadAnnotations,
                            PascalContextDataset59, PascalVOCDataset)
from mmseg.registry import DATASETS

from ..utils.errors import LoGoSegUserError
from ..utils.vocab import load_vocabulary

# the six open-vocabulary benchmarks, by metric prefix, in the paper's column order
BENCHMARKS = ('ade847', 'pc459', 'ade150', 'pc59', 'voc20', 'voc20b')
_VOC_PALETTE = PascalVOCDataset.METAINFO['palette']  # background first, then the 20 classes

# what every evaluation command accepts when the data lives elsewhere (mim test, evaluate_all, the smoke model)
DATA_ROOT_HINT = (', or if it is elsewhere pass --cfg-options test_dataloader.dataset.data_root=DIR (DIR holds '
                  'prepared/; the smoke stand-ins: prepared/smoke_standins)')


class DatasetNotFoundError(LoGoSegUserError):
    """A benchmark's data is not (or not completely) prepared; the message names the DVC stage to run."""


class DatasetFileError(LoGoSegUserError):
    """A file of a prepared dataset cannot be read (truncated, corrupt); the message names it and the stage."""


class PreparedSegDataset(BaseSegDataset):
    """A dataset in the prepared layout: one label map per image, named after it.

    Subclasses set ``METAINFO`` (with ``ignore_index``), ``SPLITS`` (split -> (image folder, label folder),
    relative to ``data_root``), ``STAGE`` (the DVC stage that writes the labels) and ``SEG_MAP_SUFFIX``.

    Args:
        split: a key of ``SPLITS`` (``'val'``, or ``'train'`` for training sets).
        data_root: folder the ``SPLITS`` paths are relative to.
        data_prefix: explicit ``dict(img_path=..., seg_map_path=...)``, replacing the split's folders.
        prepare_stage: the DVC stage that writes this data, named by the errors (default ``STAGE``; the
            smoke profile's stand-ins of every dataset come from ``prepare_smoke``).
        **kwargs: the other ``BaseSegDataset`` arguments (``pipeline``, ``test_mode``, ``indices``, ...).

    Raises:
        DatasetNotFoundError: a folder is missing or holds no label maps.
        DatasetFileError: (when an item is loaded) its image or label file cannot be read.
        LoGoSegUserError: an unknown split, or a pipeline that would load 16-bit labels with MMSeg's uint8
            ``LoadAnnotations``.
    """

    SPLITS: ClassVar[dict[str, tuple[str, str]]] = {}
    STAGE: ClassVar[str] = ''
    BENCHMARK: ClassVar[str] = ''  # metric prefix of its test results (``TestMetricsHook``)
    SEG_MAP_SUFFIX: ClassVar[str] = '.png'

    def __init__(self, split: str = 'val', data_root: str = '', data_prefix: Optional[dict] = None,
                 prepare_stage: Optional[str] = None, **kwargs) -> None:
        self.stage = prepare_stage or self.STAGE
        if split not in self.splits:
            raise LoGoSegUserError(f'{self.title} has no split {split!r}; choose one of {", ".join(self.splits)}')
        if data_prefix is None:
            img_dir, label_dir = self.splits[split]
            data_prefix = dict(img_path=img_dir, seg_map_path=label_dir)
        super().__init__(data_root=data_root, data_prefix=data_prefix, img_suffix='.jpg',
                         seg_map_suffix=self.SEG_MAP_SUFFIX, ignore_index=self.label_ignore_index, **kwargs)
        if self.ignore_index > 255 and any(type(t) is LoadAnnotations for t in self.pipeline.transforms):
            raise LoGoSegUserError(f'{type(self).__name__} labels are 16-bit and MMSeg\'s LoadAnnotations casts '
                                   'them to uint8; use LoadSegAnnotations in the pipeline')

    @property
    def splits(self) -> dict[str, tuple[str, str]]:
        """split -> (image folder, label folder), relative to ``data_root``."""
        return self.SPLITS

    @property
    def title(self) -> str:
        return type(self).__name__

    @property
    def label_ignore_index(self) -> int:
        return self.METAINFO['ignore_index']

    def prepare_data(self, idx):
        try:
            return super().prepare_data(idx)
        except (OSError, ValueError, SyntaxError) as err:  # PIL and cv2's ways of saying "cannot decode"
            info = self.get_data_info(idx)
            bad = next((path for path in (info['img_path'], info['seg_map_path']) if not readable(path)), None)
            if bad is None:
                raise
            raise DatasetFileError(f'cannot read {osp.abspath(bad)} ({type(err).__name__}: {err}); prepare the '
                                   f'dataset again with `dvc repro {self.stage}`') from err

    def load_data_list(self) -> list[dict]:
        img_dir, label_dir = self.data_prefix['img_path'], self.data_prefix['seg_map_path']
        for folder in (label_dir, img_dir):
            if not osp.isdir(folder):
                raise DatasetNotFoundError(f'dataset not found at {osp.abspath(folder)}; prepare it with '
                                           f'`dvc repro {self.stage}` (docs/datasets.md)' + DATA_ROOT_HINT)
        if self.ann_file:
            return super().load_data_list()
        suffix = self.seg_map_suffix
        names = sorted(fileio.list_dir_or_file(label_dir, list_dir=False, suffix=suffix, recursive=True,
                                               backend_args=self.backend_args))
        if not names:
            raise DatasetNotFoundError(f'no *{suffix} label maps in {osp.abspath(label_dir)}; '
                                       f'prepare them with `dvc repro {self.stage}` (docs/datasets.md)')
        return [
            dict(img_path=osp.join(img_dir, name[:-len(suffix)] + self.img_suffix),
                 seg_map_path=osp.join(label_dir, name), label_map=self.label_map,
                 reduce_zero_label=self.reduce_zero_label, seg_fields=[]) for name in names
        ]


def readable(path: str) -> bool:
    """Whether ``path`` decodes completely as an image (PIL reads to the last byte)."""
    from PIL import Image
    try:
        with Image.open(path) as image:
            image.load()
        return True
    except (OSError, ValueError, SyntaxError):
        return False


@DATASETS.register_module()
class COCOStuff171Dataset(PreparedSegDataset):
    """COCO-Stuff-171: the training set (118k train2017 images), 5,000 val2017 images."""

    METAINFO = dict(classes=load_vocabulary('coco'), palette=COCOStuffDataset.METAINFO['palette'], ignore_index=255)
    SPLITS = {split: (f'data/cocostuff/images/{folder}', f'prepared/coco_stuff171/{folder}')
              for split, folder in (('train', 'train2017'), ('val', 'val2017'))}
    BENCHMARK = 'coco_stuff171'
    STAGE = 'prepare_coco_stuff'


@DATASETS.register_module()
class ADE150Dataset(PreparedSegDataset):
    """A-150: ADE20K's 150 classes, 2,000 validation images (training split for Table 5)."""

    METAINFO = dict(classes=load_vocabulary('ade150'), palette=ADE20KDataset.METAINFO['palette'], ignore_index=255)
    SPLITS = {split: (f'data/ADEChallengeData2016/images/{folder}', f'prepared/ade150/{folder}')
              for split, folder in (('train', 'training'), ('val', 'validation'))}
    BENCHMARK = 'ade150'
    STAGE = 'prepare_ade150'


@DATASETS.register_module()
class ADE847Dataset(PreparedSegDataset):
    """A-847: ADE20K-full's 847 classes, 2,000 validation images (resized by preparation), uint16 TIFF."""

    METAINFO = dict(classes=load_vocabulary('ade847'), ignore_index=65535)
    SPLITS = {'val': ('prepared/ade847/images', 'prepared/ade847/annotations')}
    BENCHMARK = 'ade847'
    STAGE = 'prepare_ade847'
    SEG_MAP_SUFFIX = '.tif'


@DATASETS.register_module()
class PascalContext59Dataset(PreparedSegDataset):
    """PC-59: PASCAL-Context's 59 classes, the validation images (train split for Table 5)."""

    METAINFO = dict(classes=load_vocabulary('pc59'), palette=PascalContextDataset59.METAINFO['palette'],
                    ignore_index=255)
    SPLITS = {split: ('data/VOCdevkit/VOC2010/JPEGImages', f'prepared/pc59/{split}') for split in ('train', 'val')}
    BENCHMARK = 'pc59'
    STAGE = 'prepare_pc59'


@DATASETS.register_module()
class PascalContext459Dataset(PreparedSegDataset):
    """PC-459: PASCAL-Context's 459 classes, the validation images, uint16 TIFF."""

    METAINFO = dict(classes=load_vocabulary('pc459'), ignore_index=65535)
    SPLITS = {'val': ('data/VOCdevkit/VOC2010/JPEGImages', 'prepared/pc459/val')}
    BENCHMARK = 'pc459'
    STAGE = 'prepare_pc459'
    SEG_MAP_SUFFIX = '.tif'


@DATASETS.register_module()
class PascalVOC20Dataset(PreparedSegDataset):
    """PAS-20: PASCAL VOC 2012's 20 object classes, 1,449 validation images; background is ignored."""

    METAINFO = dict(classes=load_vocabulary('voc20'), palette=_VOC_PALETTE[1:], ignore_index=255)
    SPLITS = {'val': ('data/VOCdevkit/VOC2012/JPEGImages', 'prepared/voc20/val')}
    BENCHMARK = 'voc20'
    STAGE = 'prepare_voc20'


@DATASETS.register_module()
class PascalVOC20bDataset(PreparedSegDataset):
    """PAS-20b: the 20 VOC classes plus background (index 20), scored over 21 classes.

    The model is prompted with the 59 names of ``voc20b`` (the VOC classes, then the PC-59 classes that
    are not in VOC) and every prediction at or after ``background_index`` counts as background.
    """

    METAINFO = dict(classes=load_vocabulary('voc20') + ('background', ), palette=_VOC_PALETTE[1:] + _VOC_PALETTE[:1],
                    prompt_classes=load_vocabulary('voc20b'), background_index=20, ignore_index=255)
    SPLITS = {'val': ('data/VOCdevkit/VOC2012/JPEGImages', 'prepared/voc20b/val')}
    BENCHMARK = 'voc20b'
    STAGE = 'prepare_voc20b'
