"""The Runner of LoGoSeg's configs: mmengine's, with the model options checked before anything is set up.

mmengine's Runner logs the environment and the whole config, and sets up its MLflow backend, before it builds the
model, where LoGoSeg checks its options. Configs name this class (``runner_type = 'LoGoSegRunner'``, which
MMSeg's ``tools/train.py`` builds through the ``RUNNERS`` registry), so ``mim train`` with a mistyped or
out-of-range option stops with one line before any of that output (docs/training.md). MMSeg's
``tools/test.py`` always builds the plain Runner: ``mim test`` reports the same line when the model is built.
"""
from __future__ import annotations

from mmengine.runner import Runner
from mmseg.registry import MODELS, RUNNERS


def check_model_config(cfg) -> None:
    """Check ``cfg.model``'s options without building it, when its model class can (``check_config``)."""
    model = cfg.get('model')
    if not isinstance(model, dict) or 'type' not in model:
        return
    model_cls = model['type'] if callable(model['type']) else MODELS.get(model['type'])
    check = getattr(model_cls, 'check_config', None)
    if check is not None:
        check(model)


@RUNNERS.register_module()
class LoGoSegRunner(Runner):
    """:class:`mmengine.runner.Runner` whose ``from_cfg`` first checks the model config (no other change)."""

    @classmethod
    def from_cfg(cls, cfg) -> Runner:
        check_model_config(cfg)
        return super().from_cfg(cfg)
