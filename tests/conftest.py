import copy
import os
from pathlib import Path

import pytest
import torch

import logoseg  # noqa: F401  (compat fixes before torchvision/MMSeg; registers the project's modules)
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

REPO = Path(__file__).resolve().parents[1]
SMOKE_CONFIG = REPO / 'configs' / 'logoseg_smoke.py'
SMOKE_CLASSES = ('sky', 'grass', 'sand', 'water', 'brick')

init_default_scope('mmseg')


@pytest.fixture(scope='session', autouse=True)
def isolated_environment(tmp_path_factory):
    """No run of the suite writes MLflow data into the checkout or asks the network for weights."""
    os.environ['MLFLOW_TRACKING_URI'] = 'sqlite:///' + str(tmp_path_factory.mktemp('mlflow') / 'mlflow.db')
    os.environ['HF_HUB_OFFLINE'] = '1'
    yield


@pytest.fixture(scope='session')
def smoke_cfg() -> Config:
    return Config.fromfile(str(SMOKE_CONFIG))


@pytest.fixture
def build_tiny_model(smoke_cfg):
    """Factory: the smoke model (random-init tiny CLIP) with optional head/segmentor overrides, seeded."""

    def build(seed: int = 0, head: dict | None = None, **model_overrides):
        cfg = copy.deepcopy(smoke_cfg.model.to_dict())
        cfg['decode_head'].update(head or {})
        cfg.update(model_overrides)
        torch.manual_seed(seed)
        model = MODELS.build(cfg)
        model.set_vocabulary(SMOKE_CLASSES)
        return model

    return build
