"""configs/smoke/: the paper configs at toy scale on the generated stand-ins, for the CPU smoke grid."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS
from PIL import Image

from logoseg.tools.evaluate_all import BENCHMARKS
from logoseg.tools.prepare import smoke

from .conftest import REPO

SMOKE = REPO / 'configs' / 'smoke'
# backbone key of experiments/rows.yaml -> (smoke config, paper config it scales down, test mode, min grid)
BACKBONES = {
    'vitb': ('logoseg_vitb.py', 'logoseg_vitb.py', 'slide_global', 8),  # Table 4 needs r = 4, 6, 8
    'vitl': ('logoseg_vitl.py', 'logoseg_vitl.py', 'slide_global', 6),
    'convnext_b': ('logoseg_convnext_b.py', 'logoseg_convnext_b.py', 'whole', 6),
    'convnext_l': ('logoseg_convnext_l.py', 'logoseg_convnext_l.py', 'whole', 6),
}
# label folder of each benchmark's stand-in (below the stand-ins root), its ignore value and class count
LABELS = {
    'ade847': ('prepared/ade847/annotations', 65535, 847),
    'pc459': ('prepared/pc459/val', 65535, 459),
    'ade150': ('prepared/ade150/validation', 255, 150),
    'pc59': ('prepared/pc59/val', 255, 59),
    'voc20': ('prepared/voc20/val', 255, 20),
    'voc20b': ('prepared/voc20b/val', 255, 21),
}
MIM = str(Path(sys.executable).with_name('mim'))  # the environment's own `mim`, as the README runs it


def chance_miou(label_dir, ignore: int, num_classes: int) -> float:
    """The best mIoU (percent) of a label-blind predictor, from the benchmark's own labels.

    MMSeg's mIoU averages over the classes present in the labels. Candidates: one constant class for
    every pixel (the most frequent one: IoU f_max, the others 0), guessing uniformly among the present
    classes, or guessing each class with its label frequency (IoU p^2 / (2p - p^2)). The last two are
    generous: they know which classes occur.
    """
    labels = np.concatenate([(tifffile.imread(p) if p.suffix == '.tif' else np.asarray(Image.open(p))).ravel()
                             for p in sorted(label_dir.iterdir())])
    counts = np.bincount(labels[labels != ignore].astype(np.int64), minlength=num_classes)
    freq = counts[counts > 0] / counts.sum()
    n = len(freq)
    constant = freq.max() / n
    uniform = np.mean([(p / n) / (p + 1 / n - p / n) for p in freq])
    matched = np.mean([p * p / (2 * p - p * p) for p in freq])
    return 100 * float(max(constant, uniform, matched))


@pytest.fixture(scope='module')
def standins(tmp_path_factory):
    root = tmp_path_factory.mktemp('grid')
    out = root / 'prepared' / 'smoke_standins'
    assert smoke.prepare(out) is True  # the grid's defaults: 64 training, 12 validation images per set
    return out


@pytest.mark.parametrize('key', BACKBONES)
def test_each_backbone_config_scales_its_paper_config_down(key):
    name, paper_name, mode, min_grid = BACKBONES[key]
    cfg, paper = Config.fromfile(str(SMOKE / name)), Config.fromfile(str(REPO / 'configs' / paper_name))
    assert cfg.model.test_cfg['mode'] == paper.model.test_cfg['mode'] == mode
    if mode == 'slide_global':  # windows smaller than the resized test image, plus the global view
        assert cfg.model.test_cfg['crop_size'] == cfg.crop_size and cfg.test_scale[0] > cfg.crop_size[0]
        assert cfg.model.test_cfg['input_size'] == cfg.crop_size  # the windows go in at the training crop
    assert cfg.model.clip['pretrained'] is None and cfg.train_dataloader.num_workers == 0
    # a checkpoint before the end: the main job's rows exercise resuming (tests/test_grid_pipeline.py)
    assert cfg.default_hooks.checkpoint.interval < cfg.train_cfg.max_iters
    assert cfg.train_dataloader.dataset.type == 'COCOStuff171Dataset'
    assert cfg.train_dataloader.dataset.data_root == cfg.val_dataloader.dataset.data_root == 'prepared/smoke_standins'
    # the same head (every ablation switch) and pipeline steps as the paper config
    assert set(cfg.model.decode_head) == set(paper.model.decode_head)
    assert [s['type'] for s in cfg.train_pipeline] == [s['type'] for s in paper.train_pipeline]
    assert ([s['type'] for s in cfg.test_dataloader.dataset.pipeline]
            == [s['type'] for s in paper.test_dataloader.dataset.pipeline])
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    with torch.no_grad():
        grid = model.backbone(torch.zeros(1, 3, *cfg.crop_size))['visual'].shape[-2:]
    assert min(grid) >= min_grid  # the region grid r must fit the feature grid


def test_table5_rows_switch_the_training_set_by_dataset_type(standins):
    init_default_scope('mmseg')
    cfg = Config.fromfile(str(SMOKE / 'logoseg_vitb.py'))
    sizes = {}
    for dataset_type in ('COCOStuff171Dataset', 'PascalContext59Dataset', 'ADE150Dataset'):
        cfg.merge_from_dict({'train_dataloader.dataset.type': dataset_type,
                             'train_dataloader.dataset.data_root': str(standins)})
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        sizes[dataset_type] = (len(dataset), len(dataset.metainfo['classes']))
    assert sizes == {'COCOStuff171Dataset': (64, 171), 'PascalContext59Dataset': (64, 59),
                     'ADE150Dataset': (64, 150)}


@pytest.mark.slow
def test_vitb_trains_and_beats_chance_on_all_six_standins(standins, tmp_path):
    """The ViT-B smoke config's default schedule, then evaluate_all, as the smoke grid runs a row."""
    cwd = standins.parents[1]  # the config's relative data_root resolves here
    iters = Config.fromfile(str(SMOKE / 'logoseg_vitb.py')).train_cfg.max_iters
    env = dict(os.environ, PYTHONPATH=str(REPO / 'projects'))
    train = subprocess.run(
        [MIM, 'train', 'mmseg', str(SMOKE / 'logoseg_vitb.py'), '--work-dir', str(tmp_path)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert train.returncode == 0, train.stderr[-3000:]
    out = tmp_path / 'm.json'
    evaluate = subprocess.run(
        [sys.executable, '-m', 'logoseg.tools.evaluate_all', str(SMOKE / 'logoseg_vitb.py'),
         str(tmp_path / f'iter_{iters}.pth'), '--out', str(out), '--work-dir', str(tmp_path / 'eval'),
         '--cfg-options', f'test_dataloader.dataset.data_root={standins}'],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    results = json.loads(out.read_text())
    assert list(results) == list(BENCHMARKS)
    for benchmark, (folder, ignore, num_classes) in LABELS.items():
        assert results[benchmark]['num_images'] == 12
        chance = chance_miou(standins / folder, ignore, num_classes)
        assert results[benchmark]['mIoU'] > chance, (benchmark, results[benchmark]['mIoU'], chance)
