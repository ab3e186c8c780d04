"""The PyTorch selective scan against a step-by-step recurrence written out here, and the backend dispatch."""
import sys

import pytest
import torch
import torch.nn.functional as F

from logoseg.models import selective_scan as ss
from logoseg.models.selective_scan import selective_scan, selective_scan_torch
from logoseg.utils.errors import LoGoSegUserError


def reference_scan(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False):
    """Mamba's recurrence one time step at a time: h_t = exp(d_t A) h_{t-1} + d_t B_t u_t, y_t = C_t h_t + D u_t."""
    batch, channels, length = u.shape
    groups = B.shape[1]
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    group_of = torch.arange(channels) // (channels // groups)  # channel d reads B[:, group_of[d]]
    Bd, Cd = B[:, group_of], C[:, group_of]  # (batch, Dch, N, L)
    h = u.new_zeros(batch, channels, A.shape[1])
    ys = []
    for t in range(length):
        dt = delta[:, :, t, None]
        h = torch.exp(dt * A) * h + dt * Bd[..., t] * u[:, :, t, None]
        y = (Cd[..., t] * h).sum(-1)
        if D is not None:
            y = y + D * u[:, :, t]
        ys.append(y)
    return torch.stack(ys, dim=-1)


def make_inputs(batch, channels, d_state, length, groups, with_d, with_bias, dtype=torch.float32, seed=0,
                requires_grad=True):
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=gen)).to(dtype).requires_grad_(requires_grad)

    return dict(
        u=rand(batch, channels, length),
        delta=(0.5 * torch.rand(batch, channels, length, generator=gen)).to(dtype).requires_grad_(requires_grad),
        A=(-torch.rand(channels, d_state, generator=gen) - 0.1).to(dtype).requires_grad_(requires_grad),
        B=rand(batch, groups, d_state, length),
        C=rand(batch, groups, d_state, length),
        D=rand(channels) if with_d else None,
        delta_bias=rand(channels, scale=0.3) if with_bias else None,
    )


CASES = [  # batch, Dch, N, L, G, D, delta_bias, softplus
    (2, 4, 3, 1, 1, False, False, False),
    (1, 8, 4, 2, 4, True, True, True),
    (2, 8, 5, 37, 4, True, False, True),
    (1, 6, 2, 64, 2, False, True, False),
    (2, 4, 4, 300, 1, True, True, True),
    (1, 8, 16, 300, 4, True, True, True),
]


@pytest.mark.parametrize('batch,channels,d_state,length,groups,with_d,with_bias,softplus', CASES)
def test_matches_reference_values_and_gradients(batch, channels, d_state, length, groups, with_d, with_bias,
                                                softplus):
    inputs = make_inputs(batch, channels, d_state, length, groups, with_d, with_bias)
    y = selective_scan_torch(**inputs, delta_softplus=softplus)
    y_ref = reference_scan(**inputs, delta_softplus=softplus)
    assert y.shape == (batch, channels, length) and y.dtype == torch.float32
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)

    leaves = [v for v in inputs.values() if v is not None]
    weight = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
    grads = torch.autograd.grad((y * weight).sum(), leaves)
    grads_ref = torch.autograd.grad((y_ref * weight).sum(), leaves)
    for name, g, g_ref in zip([k for k, v in inputs.items() if v is not None], grads, grads_ref):
        torch.testing.assert_close(g, g_ref, atol=1e-4, rtol=1e-4, msg=lambda m: f'grad of {name}: {m}')


def test_gradcheck_float64():
    inputs = make_inputs(2, 4, 3, 7, 2, True, True, dtype=torch.float64)
    names = list(inputs)

    def fn(*tensors):
        return selective_scan_torch(**dict(zip(names, tensors)), delta_softplus=True)

    assert fn(*inputs.values()).dtype == torch.float64
    assert torch.autograd.gradcheck(fn, tuple(inputs.values()))


def test_long_sequence_with_large_decay_is_finite():
    # delta * |A| = 50 per step: exp(-50 t) underflows within a few steps; a scan built on exp of cumulative
    # sums (exp(+sum) * exp(-sum)) would overflow to inf / nan here.
    batch, channels, d_state, length = 1, 4, 3, 1000
    gen = torch.Generator().manual_seed(2)
    u = torch.randn(batch, channels, length, generator=gen)
    delta = torch.full((batch, channels, length), 5.0)
    A = torch.full((channels, d_state), -10.0)
    B = torch.randn(batch, 1, d_state, length, generator=gen)
    C = torch.randn(batch, 1, d_state, length, generator=gen)
    y = selective_scan_torch(u, delta, A, B, C)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, reference_scan(u, delta, A, B, C), atol=1e-5, rtol=1e-5)
    # The state forgets everything within one step: y_t = C_t . (delta B_t u_t) up to exp(-50).
    torch.testing.assert_close(y, 5.0 * (B * C).sum(2) * u, atol=1e-5, rtol=1e-5)


def test_half_precision_input_returns_input_dtype():
    inputs = make_inputs(1, 4, 2, 9, 1, True, True, requires_grad=False)
    y = selective_scan_torch(**{**inputs, 'u': inputs['u'].bfloat16()})
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), reference_scan(**{**inputs, 'u': inputs['u'].bfloat16().float()}),
                               atol=2e-2, rtol=2e-2)


@pytest.fixture
def fresh_kernel_cache():
    ss._load_cuda_kernel.cache_clear()
    yield
    ss._load_cuda_kernel.cache_clear()


def test_auto_on_cpu_uses_torch_even_with_kernel(monkeypatch):
    def kernel(*args, **kwargs):
        raise AssertionError('the CUDA kernel must not be called for CPU tensors')

    monkeypatch.setattr(ss, '_load_cuda_kernel', lambda: (kernel, ''))
    inputs = make_inputs(1, 4, 2, 9, 2, True, True, requires_grad=False)
    y = selective_scan(**inputs, delta_softplus=True, backend='auto')
    torch.testing.assert_close(y, selective_scan_torch(**inputs, delta_softplus=True), atol=0, rtol=0)
    with pytest.raises(LoGoSegUserError, match='needs CUDA tensors'):
        selective_scan(**inputs, backend='cuda')


def test_missing_mamba_ssm(monkeypatch, fresh_kernel_cache):
    monkeypatch.setitem(sys.modules, 'mamba_ssm', None)  # makes `import mamba_ssm...` raise ImportError
    inputs = make_inputs(1, 4, 2, 5, 1, True, True, requires_grad=False)
    torch.testing.assert_close(selective_scan(**inputs), selective_scan_torch(**inputs), atol=0, rtol=0)
    with pytest.raises(LoGoSegUserError) as info:
        selective_scan(**inputs, backend='cuda')
    message = str(info.value)
    assert '\n' not in message
    assert 'mamba_ssm' in message and 'pip install -e ".[cuda]" --no-build-isolation' in message


def test_kernel_import_is_tried_once(monkeypatch, fresh_kernel_cache):
    monkeypatch.setitem(sys.modules, 'mamba_ssm', None)
    inputs = make_inputs(1, 4, 2, 5, 1, False, False, requires_grad=False)
    for _ in range(3):
        selective_scan(**inputs)
    info = ss._load_cuda_kernel.cache_info()
    assert info.misses == 1 and info.hits == 2


def test_bad_arguments():
    inputs = make_inputs(1, 4, 2, 5, 2, True, True, requires_grad=False)
    with pytest.raises(ValueError, match='unknown selective-scan backend'):
        selective_scan(**inputs, backend='triton')
    three_groups = inputs['B'].repeat(1, 2, 1, 1)[:, :3]  # Dch = 4 cannot be split into 3 blocks
    with pytest.raises(ValueError, match='not divisible'):
        selective_scan(**{**inputs, 'B': three_groups, 'C': three_groups}, backend='torch')
    with pytest.raises(ValueError, match='A must be'):
        selective_scan_torch(**{**inputs, 'A': inputs['A'][:3]})
