"""Fixes for the CPU stack, applied once before anything imports torchvision or MMSeg.

Each fix detects whether it is needed and does nothing otherwise, so the same code runs on GPU machines
with full mmcv and a matching torchvision build.

* PyPI's torchvision wheel is a CUDA build; on CPU torch its C extension does not load and the import
  dies registering fake kernels for ``torchvision::nms``. Defining the two operator schemas (with a CPU
  kernel for ``nms``) lets torchvision import; open_clip, timm and mmengine all import it.
* mmcv-lite ships ``mmcv/ops`` Python files without the compiled ``mmcv._ext``, while MMSeg imports
  ``mmcv.ops.point_sample`` at module level. A pure-PyTorch ``mmcv.ops`` with ``point_sample`` replaces it;
  any other op raises an error that says how to get the compiled ops.
* mmengine's PyTorch- and SLURM-launcher initialisations always call ``torch.cuda.set_device``, which a CPU
  build of torch lacks; on machines without CUDA the first becomes a plain ``init_process_group`` (gloo) and
  the second runs without pinning a device, so the distributed code paths run (and are tested) with several
  CPU processes, on one node or several.
* torch >= 2.6 loads checkpoints with ``weights_only=True``; mmengine checkpoints pickle Python objects
  (message hub, history buffers). Local checkpoints are the user's own files, so mmengine's local loader
  is re-registered to load them fully. Remote URLs keep torch's safe default.
"""
from __future__ import annotations

import importlib.util
import sys
import types

import torch
import torch.nn.functional as F

_APPLIED: dict[str, bool] = {}


def _torchvision_ops_load() -> bool:
    """True when torchvision's compiled operators load into this torch build (or there is nothing to fix)."""
    spec = importlib.util.find_spec('torchvision')
    if spec is None or 'torchvision' in sys.modules:
        return True
    if hasattr(torch.ops.torchvision, 'nms'):
        return True
    from pathlib import Path
    libs = sorted(Path(spec.origin).parent.glob('_C*.so')) + sorted(Path(spec.origin).parent.glob('_C*.pyd'))
    for lib in libs:
        try:
            torch.ops.load_library(str(lib))
        except (OSError, RuntimeError):
            continue
        if hasattr(torch.ops.torchvision, 'nms'):
            return True
    return False


def _nms_cpu(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression; the reference semantics of ``torchvision.ops.nms``."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    order = scores.argsort(descending=True)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for idx in order.tolist():
        if suppressed[idx]:
            continue
        keep.append(idx)
        xx1 = torch.maximum(x1[idx], x1)
        yy1 = torch.maximum(y1[idx], y1)
        xx2 = torch.minimum(x2[idx], x2)
        yy2 = torch.minimum(y2[idx], y2)
        inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
        iou = inter / (areas[idx] + areas - inter)
        suppressed |= iou > iou_threshold
    return torch.tensor(keep, dtype=torch.long, device=boxes.device)


def patch_torchvision() -> bool:
    """Define ``torchvision::nms``/``qnms`` when torchvision's own ops cannot load. Returns True if patched."""
    if 'torchvision' in _APPLIED:
        return _APPLIED['torchvision']
    patched = False
    if not _torchvision_ops_load():
        lib = torch.library.Library('torchvision', 'DEF')  # noqa: TOR901 - kept alive below
        lib.define('nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
        lib.define('qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
        lib.impl('nms', _nms_cpu, 'CPU')
        _APPLIED['torchvision_lib'] = lib  # a Library deregisters its ops when garbage-collected
        patched = True
    _APPLIED['torchvision'] = patched
    return patched


def point_sample(input: torch.Tensor, points: torch.Tensor, align_corners: bool = False,
                 **kwargs) -> torch.Tensor:
    """``mmcv.ops.point_sample``: sample ``input`` (N, C, H, W) at normalised ``points`` (N, P, 2) in [0, 1].

    Returns (N, C, P); ``points`` of shape (N, Hp, Wp, 2) give (N, C, Hp, Wp).
    """
    add_dim = points.dim() == 3
    if add_dim:
        points = points.unsqueeze(2)
    output = F.grid_sample(input, 2.0 * points - 1.0, align_corners=align_corners, **kwargs)
    return output.squeeze(3) if add_dim else output


def _lite_ops_module() -> types.ModuleType:
    module = types.ModuleType('mmcv.ops')
    module.__doc__ = 'Pure-PyTorch stand-in for mmcv.ops on mmcv-lite (installed by logoseg.compat).'
    module.point_sample = point_sample

    def __getattr__(name: str):
        # MMSeg imports several ops at module level; they must import, and fail only when used.
        if name.startswith('__'):
            raise AttributeError(name)
        message = (f'mmcv.ops.{name} needs the compiled mmcv ops, which mmcv-lite lacks; '
                   'install full mmcv 2.1.0 (docs/training.md, GPU machines) to use it')

        class UnavailableOp(torch.nn.Module):
            def __init__(self, *args, **kwargs):
                raise ImportError(message)

        UnavailableOp.__name__ = UnavailableOp.__qualname__ = name
        return UnavailableOp

    module.__getattr__ = __getattr__
    module.__all__ = ['point_sample']
    return module


def patch_mmcv_ops() -> bool:
    """Provide ``mmcv.ops`` when mmcv is installed without its compiled extension. Returns True if patched."""
    if 'mmcv_ops' in _APPLIED:
        return _APPLIED['mmcv_ops']
    patched = False
    if importlib.util.find_spec('mmcv') is not None:
        try:
            import mmcv.ops  # noqa: F401
        except ModuleNotFoundError as err:
            if err.name != 'mmcv._ext':
                raise
            for name in [n for n in sys.modules if n == 'mmcv.ops' or n.startswith('mmcv.ops.')]:
                del sys.modules[name]
            import warnings

            import mmcv
            # MMSeg warns on every import that mmcv-lite lacks this op; LoGoSeg never uses it
            warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')
            module = _lite_ops_module()
            sys.modules['mmcv.ops'] = module
            mmcv.ops = module
            patched = True
    _APPLIED['mmcv_ops'] = patched
    return patched


def _torch_loads_weights_only_by_default() -> bool:
    major, minor = (int(p) for p in torch.__version__.split('.')[:2])
    return (major, minor) >= (2, 6)


def load_local_checkpoint(filename: str, map_location=None):
    """mmengine's local loader with full unpickling: mmengine checkpoints hold more than tensors."""
    import os.path as osp
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} does not exist')
    return torch.load(filename, map_location=map_location, weights_only=False)


def patch_checkpoint_loading() -> bool:
    """Register :func:`load_local_checkpoint` for local paths when torch defaults to weights_only."""
    if 'checkpoint' in _APPLIED:
        return _APPLIED['checkpoint']
    patched = False
    if _torch_loads_weights_only_by_default() and importlib.util.find_spec('mmengine') is not None:
        from mmengine.runner.checkpoint import CheckpointLoader
        CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint, force=True)
        patched = True
    _APPLIED['checkpoint'] = patched
    return patched


def patch_cpu_distributed() -> bool:
    """Let mmengine's ``pytorch`` and ``slurm`` launchers initialise process groups on CPU-only machines."""
    if 'cpu_distributed' in _APPLIED:
        return _APPLIED['cpu_distributed']
    patched = False
    if not torch.cuda.is_available() and importlib.util.find_spec('mmengine') is not None:
        import mmengine.dist.utils as dist_utils
        init_dist_slurm = dist_utils._init_dist_slurm

        def refuse_nccl(backend: str) -> None:
            if backend == 'nccl':
                from .utils.errors import LoGoSegUserError
                raise LoGoSegUserError("NCCL needs GPUs; on CPU set env_cfg.dist_cfg.backend='gloo' "
                                       '(e.g. --cfg-options env_cfg.dist_cfg.backend=gloo)')

        def init_dist_pytorch_cpu(backend: str, init_backend: str = 'torch', **kwargs) -> None:
            refuse_nccl(backend)
            torch.distributed.init_process_group(backend=backend, **kwargs)

        def init_dist_slurm_cpu(backend: str, port=None, init_backend: str = 'torch', **kwargs) -> None:
            # mmengine's own: rank, world size and master from SLURM's variables; only the GPU pinning is skipped
            refuse_nccl(backend)
            set_device = torch.cuda.set_device
            torch.cuda.set_device = lambda device: None
            try:
                init_dist_slurm(backend, port, init_backend, **kwargs)
            finally:
                torch.cuda.set_device = set_device

        dist_utils._init_dist_pytorch = init_dist_pytorch_cpu
        dist_utils._init_dist_slurm = init_dist_slurm_cpu
        patched = True
    _APPLIED['cpu_distributed'] = patched
    return patched


def apply_all() -> dict[str, bool]:
    """Apply every fix (idempotent); returns which ones were needed here."""
    return {
        'torchvision': patch_torchvision(),
        'mmcv_ops': patch_mmcv_ops(),
        'checkpoint': patch_checkpoint_loading(),
        'cpu_distributed': patch_cpu_distributed(),
    }
