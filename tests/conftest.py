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
    os.environ['LOGOSEG_CACHE_DIR'] = str(tmp_path_factory.mktemp('logoseg_cache'))  # text-embedding cache
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


SMOKE_CHECKPOINT_ITERS = 20


@pytest.fixture(scope='session')
def smoke_checkpoint(tmp_path_factory, isolated_environment) -> Path:
    """A checkpoint of the smoke config, trained once per test session in-process (a few dozen iterations:
    enough to leave random init, not to be accurate)."""
    from mmengine.runner import Runner
    root = tmp_path_factory.mktemp('smoke_checkpoint')
    cfg = Config.fromfile(str(SMOKE_CONFIG))
    cfg.work_dir = str(root / 'work_dir')
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = str(root / 'prepared' / 'smoke')
    cfg.train_dataloader.batch_size = 2
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=SMOKE_CHECKPOINT_ITERS, val_interval=10 ** 9)
    cfg.param_scheduler[0].end = 5
    cfg.param_scheduler[1].begin, cfg.param_scheduler[1].end = 5, SMOKE_CHECKPOINT_ITERS
    cfg.default_hooks.checkpoint.interval = SMOKE_CHECKPOINT_ITERS
    cfg.visualizer = dict(type='SegLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')],
                          name='smoke_checkpoint_visualizer')
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator', 'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    Runner.from_cfg(cfg).train()
    checkpoint = root / 'work_dir' / f'iter_{SMOKE_CHECKPOINT_ITERS}.pth'
    assert checkpoint.is_file()
    return checkpoint


@pytest.fixture(scope='session')
def prepared_standin(tmp_path_factory) -> Path:
    """``prepared/datasets`` holding the stand-in of a user's dataset as its DVC stages leave it: generated,
    declared as in params.yaml, prepared."""
    import yaml

    from logoseg.tools.prepare import declared
    from logoseg.tools.prepare import standin_dataset as standin
    root = tmp_path_factory.mktemp('own_data')
    standin.generate(root / 'datasets' / 'standin')
    params = yaml.safe_load((REPO / 'params.yaml').read_text())
    (root / 'params.yaml').write_text(yaml.safe_dump(dict(datasets=params['datasets'])))
    declared.prepare(declared.load_declaration('standin', root / 'params.yaml'),
                     root / 'prepared' / 'datasets' / 'standin')
    return root / 'prepared' / 'datasets'
