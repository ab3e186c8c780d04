"""One way to build a LoGoSeg model from an MMSeg config, used by the predictor, the benchmarks and the grid.

MMSeg's ``init_model`` builds and loads a checkpoint in one go; LoGoSeg's callers need the model before (or
without) a checkpoint: the predictor checks the checkpoint against the model, the benchmarks time random
weights, the grid checks a row's options by building its model.
"""
from __future__ import annotations

import contextlib
import copy
import logging

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS


def build_model(cfg: Config, clip_weights: bool = False, device: str | torch.device = 'cpu') -> torch.nn.Module:
    """``cfg.model`` built in the config's scope (``cfg`` itself is not changed).

    Args:
        clip_weights: load the CLIP weights of the config's open_clip tag (the cache, else a download; offline
            without them it fails with one line). False builds CLIP with random weights: a checkpoint loaded
            next holds every weight, and timings and option checks do not depend on their values.
        device: where the model goes.
    """
    model_cfg = copy.deepcopy(cfg.model)
    if not clip_weights:
        model_cfg.clip = dict(model_cfg.clip, pretrained=None)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    with _quiet_random_init():
        model = MODELS.build(model_cfg)
    return model.to(device)


@contextlib.contextmanager
def _quiet_random_init():
    """open_clip warns on the root logger of random weights, which the caller asked for."""
    def drop(record: logging.LogRecord) -> bool:
        return 'No pretrained weights loaded' not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)
