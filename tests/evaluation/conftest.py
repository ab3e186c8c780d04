from pathlib import Path

import pytest
import torch
from mmseg.registry import MODELS

from tests.datasets.prepared_fixtures import build_all

SMOKE = str(Path(__file__).resolve().parents[2] / 'configs' / 'logoseg_smoke.py')
# the evaluation runs' stand-in for the CAT-Seg protocol at smoke scale: a fixed square resize (here 64,
# not 640) and 16-bit-safe labels; the model resizes its logits back to each label's original size
SMOKE_TEST_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64), keep_ratio=False),
    dict(type='LoadSegAnnotations'),
    dict(type='PackSegInputs'),
]


@pytest.fixture(scope='session')
def prepared_root(tmp_path_factory):
    """Every benchmark's prepared fixture, images and labels at 1/4 size (fast model runs)."""
    root = tmp_path_factory.mktemp('prepared')
    build_all(root, scale=0.25)
    return root


@pytest.fixture(scope='session')
def smoke_checkpoint(smoke_cfg, tmp_path_factory):
    """An untrained (random-init) smoke model saved as a checkpoint: evaluation needs no training."""
    torch.manual_seed(0)
    model = MODELS.build(smoke_cfg.model)
    path = tmp_path_factory.mktemp('checkpoint') / 'smoke_random.pth'
    torch.save({'state_dict': model.state_dict()}, path)
    return str(path)
