"""LoGoSeg for MMSegmentation: importing the package registers its models, datasets, metrics and hooks.

Configs load it with ``custom_imports = dict(imports=['logoseg'])``.
"""
from . import compat

compat.apply_all()  # before anything below imports torchvision or MMSeg

from .utils.errors import LoGoSegUserError, install_excepthook  # noqa: E402

install_excepthook()

from . import datasets, engine, evaluation, models  # noqa: E402,F401

__version__ = '0.1.0'
__all__ = ['LoGoSegUserError', '__version__']
