"""Optimizer construction."""
from __future__ import annotations

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class FrozenAwareOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's constructor (``paramwise_cfg`` and all) that leaves fully frozen sub-modules out.

    The frozen CLIP text tower has hundreds of tensors; the default constructor adds each to the optimizer
    and logs a warning per tensor.
    """

    def add_params(self, params: list, module: nn.Module, prefix: str = '', is_dcn_module=None) -> None:
        if not any(p.requires_grad for p in module.parameters()):
            return
        super().add_params(params, module, prefix=prefix, is_dcn_module=is_dcn_module)
