"""The ablation grid: rows of ``experiments/rows.yaml`` (knob deltas on the full model) under a profile of
``params.yaml`` (``smoke`` or ``paper``) become mmengine configs, output paths and MLflow tags.

A row's knobs map onto one config switch each (docs/interpretations.md, rows 2, 7, 11-12, and docs/experiments.md):
``op``/``ccf``/``ra`` (Table 2), ``gc``/``da``/``fusion_depth`` (Table 3), ``lambda``/``r`` (Table 4),
``train_set`` (Table 5, or a dataset declared in params.yaml), ``backbone`` (Table 1) and ``prior_on_logits``;
``load_from`` starts the training from a checkpoint's weights (fine-tuning).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Optional

import yaml
from mmengine.config import Config

from ..datasets.benchmarks import BENCHMARKS
from ..datasets.declared import PREPARED_ROOT, load_manifest
from ..utils.errors import LoGoSegUserError
from ..utils.files import file_sha256
from .repository import relative_to_repo, repo_root

PROFILES = ('smoke', 'paper', 'rehearsal')
BACKBONES = ('vitb', 'vitl', 'convnext_b', 'convnext_l')
TRAIN_SETS = ('coco', 'pc59', 'ade150')
# the grid's knob -> LoGoSegHead argument; also the MLflow param names (docs/experiments.md)
HEAD_KNOBS = dict(op='use_object_prior', ccf='use_fusion', ra='use_region_alignment', gc='use_global_context',
                   da='use_dir_attn', fusion_depth='fusion_depth', r='region_grid', prior_on_logits='prior_on_logits')
# The prior weight a learnable lambda starts from: sigmoid(theta) with theta = 0 (models/region_alignment.py)
LEARNABLE_LAMBDA_INIT = 0.5


def knob_params(knobs: dict) -> dict:
    """Knobs as MLflow params that chart: MLflow's parallel-coordinates chart keeps only numeric values (a
    string in a column of numbers silently drops that run), so booleans are ``1``/``0`` and ``lambda`` is always
    a number: ``lambda_learnable`` = 1 marks the learnable prior (Table 4's "Adapt."), whose ``lambda`` is then
    its initial value. ``backbone``, ``train_set`` and ``load_from`` are names, not quantities: they stay strings
    (``load_from`` ``none`` when the row starts from CLIP's weights: MLflow keeps no null param)."""
    params = {key: int(value) if isinstance(value, bool) else value for key, value in knobs.items()}
    if 'load_from' in knobs:
        params['load_from'] = knobs['load_from'] or 'none'
    if 'lambda' in knobs:
        learnable = knobs['lambda'] == 'learnable'
        params['lambda'] = LEARNABLE_LAMBDA_INIT if learnable else float(knobs['lambda'])
        params['lambda_learnable'] = int(learnable)
    return params


def load_yaml(path: Path) -> dict:
    if not path.is_file():
        raise LoGoSegUserError(f'{path} not found; run from the repository root of a LoGoSeg checkout')
    with open(path, encoding='utf-8') as f:
        return yaml.safe_load(f) or {}


@dataclass(frozen=True)
class Row:
    """One grid row under one profile: what to train, where its outputs go, how MLflow names it."""

    key: str
    profile: str
    knobs: dict
    tables: dict
    settings: dict  # the profile's section of params.yaml
    root: Path

    # -- outputs ---------------------------------------------------------------------------------------------
    @property
    def train_dir(self) -> Path:
        """The row's DVC output: one work dir per configuration it was trained with (:attr:`work_dir`)."""
        return self.root / 'results' / self.profile / 'train' / self.key

    @property
    def work_dir(self) -> Path:
        """This configuration's training: ``train_dir/<fingerprint prefix>``. Trainings of other
        configurations stay beside it, so switching a knob back finds its complete training again."""
        return self.train_dir / self.fingerprint[:12]

    @property
    def eval_dir(self) -> Path:
        """Logs of the six evaluations; outside ``work_dir``, which is the training stage's DVC output."""
        return self.root / 'results' / self.profile / 'eval' / self.key

    @property
    def metrics_file(self) -> Path:
        return self.root / 'results' / self.profile / 'metrics' / f'{self.key}.json'

    @property
    def curve_file(self) -> Path:
        return self.root / 'results' / self.profile / 'curves' / f'{self.key}.csv'

    @property
    def done_file(self) -> Path:
        """Written last, after training and its final validation: the training is complete."""
        return self.work_dir / 'done.json'

    @property
    def data_manifest(self) -> Path:
        return self.root / 'results' / self.profile / 'data.json'

    @property
    def log_file(self) -> Path:
        """Tracebacks of the row's failures (the terminal gets one line naming this file)."""
        return self.root / 'results' / self.profile / 'logs' / f'{self.key}.log'

    # -- configuration ---------------------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.root / self.settings['configs'][self.knobs['backbone']]

    def cfg_options(self) -> dict:
        """The row's knobs and the profile's schedule as mmengine ``--cfg-options``."""
        options = {f'model.decode_head.{HEAD_KNOBS[k]}': self.knobs[k] for k in HEAD_KNOBS}
        lam = self.knobs['lambda']
        options['model.decode_head.prior_lambda'] = 'learnable' if lam == 'learnable' else float(lam)
        if self.declared_train_set:  # trained and validated on the user's data: its train and eval splits
            for loader, split in (('train_dataloader', 'train'), ('val_dataloader', None)):
                options.update({f'{loader}.dataset.type': 'DeclaredDataset',
                                f'{loader}.dataset.name': self.knobs['train_set'], f'{loader}.dataset.split': split})
            prepared = self.dataset_manifest(self.knobs['train_set']).is_file()  # else the dataset names its stage
            ignore = load_manifest(self.knobs['train_set'], str(self.root / PREPARED_ROOT))['ignore_index'] \
                if prepared else 255
            if ignore != 255:  # over 255 classes: 16-bit trainIds with 65535 ignored. The configs' 255 is a class
                # there, and padding labelled 255 would train as that class
                options['model.decode_head.ignore_index'] = ignore
                options['model.data_preprocessor.seg_pad_val'] = ignore
        else:
            options['train_dataloader.dataset.type'] = self.settings['train_sets'][self.knobs['train_set']]
        options.update({f'train_dataloader.dataset.{k}': v for k, v in self.dataset_options().items()})
        options.update({f'val_dataloader.dataset.{k}': v for k, v in self.dataset_options(test=True).items()})
        options.update(self.test_options())
        options['randomness.seed'] = self.settings['seed']
        if self.load_from:  # relative to the repository: no path of this checkout in the config
            options['load_from'] = self.load_from.relative_to(self.root).as_posix()
        if self.settings.get('random_weights'):
            options['model.clip.pretrained'] = None
        gpus = max(int(self.settings.get('gpus', 1)), 1)
        if self.settings.get('total_batch_size'):
            options['train_dataloader.batch_size'] = max(int(self.settings['total_batch_size']) // gpus, 1)
        return options

    @cached_property
    def config(self) -> Config:
        """The row's mmengine config (knobs and schedule applied), without ``work_dir``, checked by building
        its model with random weights (seconds, nothing downloaded): a bad knob stops here, before any
        output of the row is touched."""
        if self.load_from and not self.load_from.is_file():
            source = self.knobs['load_from']
            fix = (f'train that row first (`dvc repro row@{self.base_row}`)' if self.base_row else
                   'give a checkpoint path relative to the repository root, or row:<row> for a grid row\'s')
            missing = relative_to_repo(self.load_from, self.root)
            raise LoGoSegUserError(f'row {self.key!r}: load_from {source}: {missing} not found; {fix}')
        if not self.config_file.is_file():
            raise LoGoSegUserError(f'config {self.config_file} of backbone {self.knobs["backbone"]!r} not found; '
                                   f'check {self.profile}.configs in params.yaml')
        cfg = Config.fromfile(str(self.config_file))
        cfg.merge_from_dict(self.cfg_options())
        if self.settings.get('max_iters'):  # else the config's own schedule (smoke: per backbone)
            set_schedule(cfg, int(self.settings['max_iters']))
        check_model(cfg)
        return cfg

    def dataset_options(self, test: bool = False) -> dict:
        """Where the profile's data is, which DVC stage prepares it (named by a missing dataset's error) and,
        for validation and test sets, how many of their images the profile evaluates (default all)."""
        options = {}
        if self.settings.get('data_root'):
            options['data_root'] = self.settings['data_root']
        if self.settings.get('prepare_stage'):
            options['prepare_stage'] = self.settings['prepare_stage']
        if test and self.settings.get('eval_images'):
            options['indices'] = int(self.settings['eval_images'])
        return options

    @property
    def base_row(self) -> Optional[str]:
        """The grid row whose final checkpoint this row starts from (``load_from: row:<row>``), if any."""
        return base_row(self.knobs)

    @property
    def load_from(self) -> Optional[Path]:
        """The checkpoint the row starts from (``load_from`` knob): a path relative to the repository, or
        ``row:<row>``, that row's final checkpoint under this profile; None: from CLIP's weights."""
        if self.base_row:
            return self.root / 'results' / self.profile / 'train' / self.base_row / 'final.pth'
        return self.root / self.knobs['load_from'] if self.knobs.get('load_from') else None

    @property
    def declared_train_set(self) -> bool:
        return self.knobs['train_set'] not in TRAIN_SETS

    @property
    def benchmarks(self) -> tuple[str, ...]:
        """What the row is evaluated on: the profile's ``benchmarks`` (default the six), declared datasets too."""
        return tuple(self.settings.get('benchmarks') or BENCHMARKS)

    @property
    def declared_datasets(self) -> tuple[str, ...]:
        """The declared datasets the row trains or is evaluated on (their manifests go to its run)."""
        names = ([self.knobs['train_set']] if self.declared_train_set else []) + list(self.benchmarks)
        return tuple(dict.fromkeys(name for name in names if name not in BENCHMARKS))

    def dataset_manifest(self, name: str) -> Path:
        return self.root / PREPARED_ROOT / name / 'manifest.json'

    def test_options(self) -> dict:
        """``cfg_options`` of the six evaluations."""
        return {f'test_dataloader.dataset.{k}': v for k, v in self.dataset_options(test=True).items()}

    def build_config(self) -> Config:
        """:attr:`config` with this configuration's ``work_dir``, for the Runner."""
        cfg = self.config.copy()
        cfg.work_dir = str(self.work_dir)
        return cfg

    # -- tracking --------------------------------------------------------------------------------------------
    def params(self) -> dict:
        """MLflow params: the knobs (:func:`knob_params`: numbers where MLflow charts them) plus the schedule,
        as flat scalars."""
        params = knob_params(self.knobs)
        params.update(seed=self.settings['seed'], config=str(self.config_file.relative_to(self.root)))
        if self.settings.get('max_iters'):
            params['max_iters'] = self.settings['max_iters']
        return params

    def tags(self) -> dict:
        tags = dict(row=self.key, profile=self.profile,
                    tables=','.join(sorted(k.removeprefix('table') for k in self.tables)))
        for table, labels in self.tables.items():
            tags[table] = ' | '.join(labels) if isinstance(labels, list) else str(labels)
        return tags

    @cached_property
    def fingerprint(self) -> str:
        """Hash of what the training depends on: the resolved config (no paths of this checkout), every
        source file of the package that the training runs (model, datasets, vocabularies, utils, hooks,
        optimizer) and the data version. A complete training with the same fingerprint is not redone."""
        digest = hashlib.sha256(self.config.pretty_text.encode())
        for path in training_sources():
            digest.update(path.relative_to(PACKAGE).as_posix().encode())
            digest.update(path.read_bytes())
        if self.data_manifest.is_file():
            digest.update(self.data_manifest.read_bytes())
        if self.declared_train_set:
            digest.update(load_manifest(self.knobs['train_set'], str(self.root / PREPARED_ROOT))['digest'].encode())
        if self.load_from:
            digest.update(file_sha256(self.load_from).encode())
        return digest.hexdigest()


    @cached_property
    def evaluation_fingerprint(self) -> str:
        """Hash of what the row's metrics depend on besides the training: the evaluation code and configs and
        the test data's options. A complete training whose metrics JSON records this hash is up to date."""
        digest = hashlib.sha256(self.fingerprint.encode())
        digest.update(json.dumps(self.test_options(), sort_keys=True).encode())
        digest.update(' '.join(self.benchmarks).encode())
        for name in self.benchmarks:
            if name not in BENCHMARKS:  # a declared dataset: its prepared version
                digest.update(load_manifest(name, str(self.root / PREPARED_ROOT))['digest'].encode())
        for path in [*sources(PACKAGE, EVALUATION_SOURCES), *sources(self.root, ('configs/eval', ))]:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()


PACKAGE = Path(__file__).resolve().parents[1]
# What a training's result depends on, beside its config and data (also the row stages' DVC deps, dvc.yaml).
# Evaluation code is not here: a change there re-evaluates a complete training instead of retraining it.
TRAINING_SOURCES = ('__init__.py', 'compat.py', 'models', 'datasets', 'utils', 'vocab', 'engine')


# What the metrics depend on beside the training and the eval configs (configs/eval).
EVALUATION_SOURCES = ('evaluation', 'tools/evaluate_all.py', 'tools/benchmark.py')


def sources(root: Path, names) -> list[Path]:
    """The files ``names`` (files or folders below ``root``) stand for, in a fixed order."""
    files = []
    for name in names:
        path = root / name
        files.extend(sorted(p for p in path.rglob('*') if p.is_file() and '__pycache__' not in p.parts)
                     if path.is_dir() else [path])
    return files


def training_sources() -> list[Path]:
    return sources(PACKAGE, TRAINING_SOURCES)


def check_model(cfg: Config) -> None:
    """Build ``cfg``'s model with random weights: every option error is raised now, as one line."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    from ..apis.model import build_model
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    dataset = cfg.train_dataloader.dataset.type
    if DATASETS.get(dataset) is None:
        raise LoGoSegUserError(f'train_dataloader.dataset.type={dataset!r} is not a registered dataset; check '
                               'the train_sets of params.yaml')
    build_model(cfg)  # random CLIP weights: seconds, nothing downloaded


def set_schedule(cfg: Config, max_iters: int) -> None:
    """Train for ``max_iters``: the loop, the validation and checkpoint intervals and the last scheduler's end."""
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = min(cfg.train_cfg.get('val_interval', max_iters), max_iters)
    checkpoint = cfg.default_hooks.checkpoint
    # at least one checkpoint half-way, so that an interrupted training has something to resume from
    checkpoint.interval = min(checkpoint.get('interval', max_iters), max(max_iters // 2, 1))
    schedulers = cfg.param_scheduler if isinstance(cfg.param_scheduler, list) else [cfg.param_scheduler]
    for warmup in schedulers[:-1]:  # a warm-up that would outlast a short schedule: its first tenth
        if warmup.get('end', 0) >= max_iters:
            warmup['end'] = max(max_iters // 10, 1)
            schedulers[-1]['begin'] = warmup['end']
    schedulers[-1]['end'] = max_iters


def base_row(knobs: dict) -> Optional[str]:
    source = knobs.get('load_from') or ''
    return source.removeprefix('row:') if source.startswith('row:') else None


def load_row(key: str, profile: Optional[str] = None, root: Optional[Path] = None) -> Row:
    """The row ``key`` of ``experiments/rows.yaml`` under ``profile`` (default: ``params.yaml``'s)."""
    root = root or repo_root()
    params = load_yaml(root / 'params.yaml')
    profile = profile or params.get('profile', 'smoke')
    if profile not in PROFILES:
        raise LoGoSegUserError(f'unknown profile {profile!r} in params.yaml; use one of {", ".join(PROFILES)}')
    grid = load_yaml(root / 'experiments' / 'rows.yaml')
    rows = grid.get('rows', {})
    if key not in rows:
        raise LoGoSegUserError(f'unknown grid row {key!r}; experiments/rows.yaml has {", ".join(rows)}')
    knobs = dict(grid['knobs'])
    unknown = set(rows[key].get('set') or {}) - set(knobs)
    if unknown:
        raise LoGoSegUserError(f'row {key!r} sets unknown knob(s) {sorted(unknown)}; knobs: {", ".join(knobs)}')
    knobs.update(rows[key].get('set') or {})
    if knobs['backbone'] not in BACKBONES:
        raise LoGoSegUserError(f'row {key!r}: backbone {knobs["backbone"]!r}; use one of {", ".join(BACKBONES)}')
    base = base_row(knobs)
    if base and base not in list(rows)[:list(rows).index(key)]:
        # a row starts only from an earlier one: no chain of rows can loop back
        raise LoGoSegUserError(f'row {key!r}: load_from {knobs["load_from"]}: ' + (
            'no such row in experiments/rows.yaml' if base not in rows else
            f'row {base!r} must come before {key!r} in experiments/rows.yaml (a row starts from an earlier one)'))
    declared = tuple(params.get('datasets') or {})
    if knobs['train_set'] not in TRAIN_SETS + declared:
        raise LoGoSegUserError(f'row {key!r}: train_set {knobs["train_set"]!r}; use one of {", ".join(TRAIN_SETS)} or '
                               f'a dataset declared in params.yaml ({", ".join(declared) or "none declared"})')
    unknown = [name for name in params[profile].get('benchmarks') or () if name not in BENCHMARKS + declared]
    if unknown:
        raise LoGoSegUserError(f'{profile}.benchmarks in params.yaml: {", ".join(map(repr, unknown))} is neither a '
                               f'benchmark ({", ".join(BENCHMARKS)}) nor a declared dataset')
    return Row(key, profile, knobs, dict(rows[key].get('tables') or {}), params[profile], root)


def row_keys(root: Optional[Path] = None) -> list[str]:
    """The grid's rows, in the order of ``experiments/rows.yaml``."""
    return list(load_yaml((root or repo_root()) / 'experiments' / 'rows.yaml').get('rows', {}))
