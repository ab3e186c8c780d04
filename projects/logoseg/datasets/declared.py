"""A dataset of your own: declared in ``params.yaml`` (``datasets:``), checked and written by the DVC stage
``prepare_dataset@<name>`` (``logoseg.tools.prepare.declared``) to ``prepared/datasets/<name>/``.

One class serves every declared dataset: it reads the preparation's ``manifest.json`` (class names, ignore
value, image / label pairs per split), so no dataset needs a class, a config or a vocabulary file of its own.
Its class names become the model's vocabulary through ``VocabularyHook`` as the benchmarks' do, and its name
prefixes its test metrics (``<name>/mIoU``) as a benchmark's does.
"""
from __future__ import annotations

import json
import os.path as osp
import re
from typing import Optional

from mmseg.registry import DATASETS

from ..utils.errors import LoGoSegUserError
from .benchmarks import DatasetNotFoundError, PreparedSegDataset

PREPARED_ROOT = 'prepared/datasets'
NAME = re.compile(r'[a-z0-9_]+')
UNSET = '-'  # configs/eval/dataset.py's value of an unset LOGOSEG_DATASET / LOGOSEG_SPLIT (mmengine needs one)


def manifest_path(name: str, prepared_root: str = PREPARED_ROOT) -> str:
    return osp.join(prepared_root, name, 'manifest.json')


def load_manifest(name: str, prepared_root: str = PREPARED_ROOT) -> dict:
    """The preparation's manifest of the declared dataset ``name``.

    Raises:
        LoGoSegUserError: no name given, or a name that cannot be a declared dataset.
        DatasetNotFoundError: the dataset is not prepared (names the DVC stage to run).
    """
    if name in ('', UNSET):
        raise LoGoSegUserError('no dataset name given: set LOGOSEG_DATASET=<name> (or the dataset\'s name=...) to '
                               'one of the datasets declared in params.yaml (docs/datasets.md, "Your own data")')
    if not NAME.fullmatch(name):
        raise LoGoSegUserError(f'dataset name {name!r}: declared datasets are named with a-z, 0-9 and _ '
                               '(docs/datasets.md, "Your own data")')
    path = manifest_path(name, prepared_root)
    if not osp.isfile(path):
        raise DatasetNotFoundError(f'dataset {name!r} is not prepared ({osp.abspath(path)} not found); declare it '
                                   f'under datasets: in params.yaml and run `dvc repro prepare_dataset@{name}` '
                                   '(docs/datasets.md, "Your own data")')
    with open(path, encoding='utf-8') as f:
        return json.load(f)


@DATASETS.register_module()
class DeclaredDataset(PreparedSegDataset):
    """A split of a declared dataset, as its preparation wrote it (labels already in trainId form).

    Args:
        name: the dataset's name in ``params.yaml``'s ``datasets``.
        split: one of its splits (default: its declared ``eval_split``).
        prepared_root: the folder holding ``<name>/manifest.json`` (default ``prepared/datasets``).
        data_root, prepare_stage: accepted and ignored. The profiles set them for the six benchmarks, whose
            smoke profile reads generated stand-ins elsewhere; a declared dataset is the same in every profile.
        **kwargs: the other ``BaseSegDataset`` arguments (``pipeline``, ``test_mode``, ``indices``, ...).
    """

    def __init__(self, name: str = '', split: Optional[str] = None, prepared_root: str = PREPARED_ROOT,
                 data_root: str = '', prepare_stage: Optional[str] = None, **kwargs) -> None:
        self.manifest = load_manifest(name, prepared_root)
        self.name = name
        self.folder = osp.join(prepared_root, name)
        split = self.manifest['eval_split'] if split in (None, '', UNSET) else split
        metainfo = dict(classes=tuple(self.manifest['classes']), ignore_index=self.manifest['ignore_index'])
        metainfo.update(kwargs.pop('metainfo', None) or {})
        self.split_name = split
        super().__init__(split=split, data_prefix=dict(img_path=self.folder, seg_map_path=self.folder),
                         prepare_stage=f'prepare_dataset@{name}', metainfo=metainfo, **kwargs)

    @property
    def BENCHMARK(self) -> str:  # noqa: N802  (the benchmarks' class attribute: the metric prefix)
        return self.name

    @property
    def splits(self) -> dict:
        return {split: (self.folder, self.folder) for split in self.manifest['splits']}

    @property
    def title(self) -> str:
        return f'dataset {self.name!r}'

    @property
    def label_ignore_index(self) -> int:
        return self.manifest['ignore_index']

    def load_data_list(self) -> list[dict]:
        items = self.manifest['splits'][self.split_name]['items']
        if not items:
            raise DatasetNotFoundError(f'split {self.split_name!r} of dataset {self.name!r} holds no images; '
                                       f'run `dvc repro {self.stage}` again')
        return [dict(img_path=osp.join(self.folder, image), seg_map_path=osp.join(self.folder, label),
                     label_map=self.label_map, reduce_zero_label=False, seg_fields=[]) for image, label in items]
