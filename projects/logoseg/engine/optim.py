"""Optimizer construction."""
from __future__ import annotations

import logging

import torch.nn as nn
from mmengine.logging import MMLogger, print_log
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS


def _not_per_parameter(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith('paramwise_options -- ')


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class FrozenAwareOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's constructor (``paramwise_cfg`` and all) that leaves fully frozen sub-modules out.

    The frozen CLIP text tower has hundreds of tensors; the default constructor adds each to the optimizer
    and logs a warning per tensor. Two changes to what a run logs:

    * one line per ``paramwise_cfg.custom_keys`` entry (its settings and how many tensors it matched) instead
      of mmengine's line per tensor and setting;
    * the parameter groups at the base learning rate come first: mmengine logs the first group's rate as
      ``lr``, which is then the head's, not the image encoder's x0.01 (``EncoderLrHook`` logs that one).
    """

    def __call__(self, model: nn.Module) -> OptimWrapper:
        logger = MMLogger.get_current_instance()
        logger.addFilter(_not_per_parameter)
        try:
            wrapper = super().__call__(model)
        finally:
            logger.removeFilter(_not_per_parameter)
        self._log_custom_keys(model.module if hasattr(model, 'module') else model)
        return wrapper

    def add_params(self, params: list, module: nn.Module, prefix: str = '', is_dcn_module=None) -> None:
        if not any(p.requires_grad for p in module.parameters()):
            return
        super().add_params(params, module, prefix=prefix, is_dcn_module=is_dcn_module)
        if not prefix:  # the outermost call: every group is in; a stable sort keeps their order otherwise
            params.sort(key=lambda group: group.get('lr', self.base_lr) != self.base_lr)

    def _log_custom_keys(self, model: nn.Module) -> None:
        custom_keys = self.paramwise_cfg.get('custom_keys', {})
        # mmengine gives a tensor the settings of the longest key contained in its name (ties: alphabetical)
        by_priority = sorted(sorted(custom_keys), key=len, reverse=True)
        counts = dict.fromkeys(custom_keys, 0)
        for name, param in model.named_parameters():
            if param.requires_grad:
                key = next((k for k in by_priority if k in name), None)
                if key is not None:
                    counts[key] += 1
        for key, settings in custom_keys.items():
            options = ', '.join(f'{k}={v}' for k, v in settings.items())
            print_log(f'paramwise_cfg.custom_keys[{key!r}] ({options}): {counts[key]} parameter tensors',
                      logger='current')
