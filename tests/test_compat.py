"""The CPU-stack fixes: each works where needed and is a no-op elsewhere."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from logoseg import compat


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120)


def test_torchvision_imports_after_the_fix_and_nms_is_correct():
    import torchvision  # noqa: F401  (would raise "operator torchvision::nms does not exist" unfixed)
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30], [0, 0, 9, 10.]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    keep = torch.ops.torchvision.nms(boxes, scores, 0.5)
    # box 3 (highest) suppresses 0 (IoU 0.9) and 1 (IoU 0.81/0.9 ~ 0.73); box 2 is disjoint
    assert keep.tolist() == [3, 2]


def test_torchvision_fix_is_a_no_op_when_its_ops_load(monkeypatch):
    monkeypatch.setattr(compat, '_APPLIED', {})
    monkeypatch.setattr(compat, '_torchvision_ops_load', lambda: True)
    assert compat.patch_torchvision() is False


def test_torchvision_fix_is_needed_on_this_stack_in_a_fresh_interpreter():
    """Without the fix the import fails here; with it the import works (documents why the fix exists)."""
    probe = run_python("""
        import logoseg.compat as c
        print('needed' if not c._torchvision_ops_load() else 'not-needed')
        c.apply_all()
        import torchvision, torch
        print(torch.ops.torchvision.nms(torch.zeros(0, 4), torch.zeros(0), 0.5).numel())
    """)
    assert probe.returncode == 0, probe.stderr
    lines = probe.stdout.split()
    assert lines[-1] == '0' and lines[0] in ('needed', 'not-needed')


def test_point_sample_matches_bilinear_interpolation_by_hand():
    feats = torch.arange(16.).reshape(1, 1, 4, 4)
    # normalised (x, y) = (0.5, 0.5) is the centre of the map with align_corners=False: mean of the middle 4
    points = torch.tensor([[[0.5, 0.5], [0.125, 0.125]]])
    out = compat.point_sample(feats, points, align_corners=False)
    assert out.shape == (1, 1, 2)
    assert out[0, 0, 0].item() == pytest.approx((5 + 6 + 9 + 10) / 4)
    assert out[0, 0, 1].item() == pytest.approx(0.0)  # centre of pixel (0, 0)


def test_mmseg_imports_and_other_mmcv_ops_fail_only_when_used():
    import mmseg.models  # noqa: F401
    import mmcv.ops
    if not compat._APPLIED.get('mmcv_ops'):
        pytest.skip('full mmcv with compiled ops is installed: nothing to replace')
    from mmcv.ops import sigmoid_focal_loss
    with pytest.raises(ImportError, match='compiled mmcv ops'):
        sigmoid_focal_loss(torch.zeros(1), torch.zeros(1))
    assert mmcv.ops.point_sample is compat.point_sample


def test_mmcv_fix_is_a_no_op_when_mmcv_ops_import(monkeypatch):
    monkeypatch.setattr(compat, '_APPLIED', {})
    monkeypatch.setattr(compat.importlib.util, 'find_spec', lambda name: None)  # e.g. no mmcv at all
    assert compat.patch_mmcv_ops() is False


def test_runner_checkpoints_load_under_weights_only_default(tmp_path):
    from mmengine.logging import HistoryBuffer
    from mmengine.runner.checkpoint import CheckpointLoader
    path = tmp_path / 'iter_1.pth'
    torch.save({'state_dict': {'w': torch.ones(2)}, 'message_hub': {'loss': HistoryBuffer()}}, path)
    if compat._torch_loads_weights_only_by_default():
        with pytest.raises(Exception, match='(?i)weights_only|unpickl'):
            torch.load(path)
    loaded = CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert torch.equal(loaded['state_dict']['w'], torch.ones(2))
    assert isinstance(loaded['message_hub']['loss'], HistoryBuffer)


def test_checkpoint_fix_is_a_no_op_on_torch_without_the_weights_only_default(monkeypatch):
    monkeypatch.setattr(compat, '_APPLIED', {})
    monkeypatch.setattr(torch, '__version__', '2.5.1')
    assert compat.patch_checkpoint_loading() is False


def test_apply_all_is_idempotent():
    first = compat.apply_all()
    assert compat.apply_all() == first


def test_cpu_distributed_init_skips_cuda_and_explains_nccl(monkeypatch):
    import mmengine.dist.utils as dist_utils
    if torch.cuda.is_available():
        pytest.skip('CUDA machine: mmengine initialises distributed runs itself')
    from logoseg.utils.errors import LoGoSegUserError
    with pytest.raises(LoGoSegUserError, match="backend='gloo'"):
        dist_utils._init_dist_pytorch('nccl')
    monkeypatch.setattr(compat, '_APPLIED', {})
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert compat.patch_cpu_distributed() is False  # with CUDA, nothing is replaced


def test_cpu_slurm_launcher_takes_rank_and_world_from_slurm(monkeypatch):
    """mmengine's slurm launcher on CPU: its own reading of SLURM's variables, without pinning a GPU."""
    import socket
    import mmengine.dist.utils as dist_utils
    if torch.cuda.is_available():
        pytest.skip('CUDA machine: mmengine initialises distributed runs itself')
    from logoseg.utils.errors import LoGoSegUserError
    with pytest.raises(LoGoSegUserError, match="backend='gloo'"):
        dist_utils._init_dist_slurm('nccl')
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    for key, value in dict(SLURM_PROCID='0', SLURM_NTASKS='1', SLURM_NODELIST='localhost', SLURM_LOCALID='0',
                           MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port)).items():
        monkeypatch.setenv(key, value)
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        monkeypatch.delenv(key, raising=False)
    dist_utils._init_dist_slurm('gloo')
    try:
        assert torch.distributed.get_world_size() == 1 and torch.distributed.get_rank() == 0
        assert (os.environ['RANK'], os.environ['WORLD_SIZE'], os.environ['LOCAL_RANK']) == ('0', '1', '0')
    finally:
        torch.distributed.destroy_process_group()
