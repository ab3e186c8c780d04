"""LoGoSeg for MMSegmentation: importing the package registers its models, datasets, metrics and hooks.

Configs load it with ``custom_imports = dict(imports=['logoseg'])``.
"""
import os
import sys

from .utils.errors import LoGoSegUserError, install_excepthook

__version__ = '0.1.0'
__all__ = ['LoGoSegUserError', '__version__', 'register']
_registered = False


def register() -> None:
    """Apply the compatibility fixes, then register LoGoSeg's modules with MMSeg (once per process)."""
    global _registered
    if _registered:
        return
    from . import compat
    compat.apply_all()  # before anything below imports torchvision or MMSeg
    from . import datasets, engine, evaluation, models  # noqa: F401
    from .experiments import preemption, tracking  # noqa: F401  (PreemptionHook, TrackedMLflowVisBackend)
    _registered = True


install_excepthook()
# The `logoseg` console script registers in cli.main, after parsing its arguments: importing torch, MMSeg and
# open_clip takes seconds, and `logoseg --help` or a mistyped option must answer at once.
_program = os.path.splitext(os.path.basename(sys.argv[0]))[0] if sys.argv else ''
if _program.removesuffix('-script') != 'logoseg':
    register()
