"""Mamba's selective scan (S6): mamba_ssm's CUDA kernel when it is installed, a log-depth PyTorch scan otherwise.

For channel d and state n the scan runs, with delta' = softplus(delta + bias) (or delta + bias)::

    h_t = exp(delta'_t A) * h_{t-1} + delta'_t * B_t * u_t,    y_t = sum_n C_t h_t + D u_t

mamba-ssm cannot be imported on machines without CUDA, so its import is guarded and tried once.
"""
from __future__ import annotations

import functools
import warnings
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..utils.errors import LoGoSegUserError

BACKENDS = ('auto', 'torch', 'cuda')
_INSTALL_HINT = 'install it on a CUDA machine with `pip install -e ".[cuda]" --no-build-isolation`'
_KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)  # the kernel has no float64 instantiation


@functools.cache
def _load_cuda_kernel() -> tuple[Callable | None, str]:
    """Import mamba_ssm's ``selective_scan_fn`` once: ``(fn, '')``, or ``(None, why it failed)``."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except (ImportError, OSError, RuntimeError) as err:  # not installed, or built without a usable CUDA runtime
        lines = str(err).strip().splitlines()  # keeps the user-facing error to one line
        return None, f'{type(err).__name__}: {lines[0]}' if lines else type(err).__name__
    return selective_scan_fn, ''


def selective_scan(
        u: Tensor,
        delta: Tensor,
        A: Tensor,
        B: Tensor,
        C: Tensor,
        D: Tensor | None = None,
        delta_bias: Tensor | None = None,
        delta_softplus: bool = False,
        backend: str = 'auto',
) -> Tensor:
    """Selective scan with Mamba's semantics (``mamba_ssm.ops.selective_scan_interface.selective_scan_fn``).

    Args:
        u: (batch, Dch, L) input sequences.
        delta: (batch, Dch, L) step sizes.
        A: (Dch, N) state matrix (diagonal per channel; negative for a decaying state).
        B, C: (batch, G, N, L) input / output matrices; Dch is split into G equal channel blocks and block g
            uses B[:, g], C[:, g] (SS2D passes G = 4 scan directions).
        D: (Dch,) skip weight, or None.
        delta_bias: (Dch,) added to delta before the optional softplus, or None.
        delta_softplus: apply softplus to delta + delta_bias.
        backend: 'auto' (the CUDA kernel for CUDA tensors when mamba_ssm imports, else PyTorch),
            'torch', or 'cuda' (the kernel, required).

    Returns:
        y: (batch, Dch, L) in u's dtype, computed in float32 (float64 stays float64 on the PyTorch path).

    Raises:
        ValueError: unknown backend or inconsistent shapes.
        LoGoSegUserError: backend 'cuda' without mamba_ssm's kernel or without CUDA tensors.
    """
    if backend not in BACKENDS:
        raise ValueError(f'unknown selective-scan backend {backend!r}; expected one of {BACKENDS}')
    _check_shapes(u, delta, A, B, C, D, delta_bias)
    if backend == 'torch':
        return selective_scan_torch(u, delta, A, B, C, D, delta_bias, delta_softplus)
    kernel, why = _load_cuda_kernel()
    if backend == 'auto' and (kernel is None or not u.is_cuda):
        if u.is_cuda:  # a GPU run on the slow path deserves a word (Python shows it once per call site)
            warnings.warn(f'selective scan on CUDA tensors uses the PyTorch scan: the mamba_ssm kernel does not '
                          f'import ({why}); {_INSTALL_HINT}', stacklevel=2)
        return selective_scan_torch(u, delta, A, B, C, D, delta_bias, delta_softplus)
    if kernel is None:
        raise LoGoSegUserError(f"selective-scan backend 'cuda' needs mamba_ssm's CUDA kernel, which does not "
                               f'import ({why}); {_INSTALL_HINT}, or use scan backend "auto"/"torch"')
    if not u.is_cuda:
        raise LoGoSegUserError(f"selective-scan backend 'cuda' needs CUDA tensors, got {u.device}; move the "
                               f'model to a GPU or use scan backend "auto"/"torch"')
    io_dtype = u.dtype if u.dtype in _KERNEL_DTYPES else torch.float32
    # The kernel wants A, D, delta_bias in float32 and delta, B, C in the dtype of u.
    y = kernel(u.to(io_dtype).contiguous(), delta.to(io_dtype).contiguous(), A.float().contiguous(),
               B.to(io_dtype).contiguous(), C.to(io_dtype).contiguous(),
               D=None if D is None else D.float().contiguous(), z=None,
               delta_bias=None if delta_bias is None else delta_bias.float().contiguous(),
               delta_softplus=delta_softplus)
    return y.to(u.dtype)


def selective_scan_torch(
        u: Tensor,
        delta: Tensor,
        A: Tensor,
        B: Tensor,
        C: Tensor,
        D: Tensor | None = None,
        delta_bias: Tensor | None = None,
        delta_softplus: bool = False,
) -> Tensor:
    """The selective scan in plain PyTorch (any device, autograd); arguments and result as :func:`selective_scan`.

    The recurrence is evaluated as an associative scan with log2(L) vectorised steps, so memory is a few
    (batch, Dch, N, L) tensors and the time O(batch * Dch * N * L * log L).
    """
    _check_shapes(u, delta, A, B, C, D, delta_bias)
    batch, channels, length = u.shape
    groups, d_state = B.shape[1], A.shape[1]
    dtype = torch.promote_types(u.dtype, torch.float32)
    u32 = u.to(dtype)
    delta32 = delta.to(dtype)
    if delta_bias is not None:
        delta32 = delta32 + delta_bias.to(dtype)[:, None]
    if delta_softplus:
        delta32 = F.softplus(delta32)
    # Discretisation: decay a_t = exp(delta'_t A) in (0, 1] for A <= 0, input b_t = delta'_t B_t u_t.
    a = torch.exp(delta32[:, :, None, :] * A.to(dtype)[None, :, :, None])  # (batch, Dch, N, L)
    du = (delta32 * u32).reshape(batch, groups, channels // groups, 1, length)
    b = (du * B.to(dtype)[:, :, None]).reshape(batch, channels, d_state, length)  # block g uses B[:, g]
    h = _LinearRecurrence.apply(a, b)  # (batch, Dch, N, L)
    y = (h.reshape(batch, groups, channels // groups, d_state, length) * C.to(dtype)[:, :, None]).sum(3)
    y = y.reshape(batch, channels, length)
    if D is not None:
        y = y + D.to(dtype)[:, None] * u32
    return y.to(u.dtype)


def _check_shapes(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None,
                  delta_bias: Tensor | None) -> None:
    if u.dim() != 3 or delta.shape != u.shape:
        raise ValueError(f'u and delta must both be (batch, Dch, L), got {tuple(u.shape)} and {tuple(delta.shape)}')
    batch, channels, length = u.shape
    if A.dim() != 2 or A.shape[0] != channels:
        raise ValueError(f'A must be (Dch={channels}, N), got {tuple(A.shape)}')
    if B.dim() != 4 or B.shape != C.shape or (B.shape[0], B.shape[2], B.shape[3]) != (batch, A.shape[1], length):
        raise ValueError(f'B and C must both be (batch={batch}, G, N={A.shape[1]}, L={length}), '
                         f'got {tuple(B.shape)} and {tuple(C.shape)}')
    if channels % B.shape[1]:
        raise ValueError(f'Dch={channels} is not divisible by the number of B/C groups G={B.shape[1]}')
    for name, vec in (('D', D), ('delta_bias', delta_bias)):
        if vec is not None and vec.shape != (channels,):
            raise ValueError(f'{name} must be (Dch={channels},), got {tuple(vec.shape)}')


def _scan_(a: Tensor, b: Tensor) -> Tensor:
    """Hillis-Steele scan of h_t = a_t h_{t-1} + b_t (h_{-1} = 0) along the last dim, in place; returns b = h.

    After the step with offset s, position t holds the pair (prod a, h contribution) of the window (t - 2s, t];
    windows are combined with (a1, b1), (a2, b2) -> (a1 a2, a2 b1 + b2). Only products of decays a <= 1 are
    formed, never exp of a cumulative sum, so long sequences and large delta * |A| stay finite. ``a`` is
    overwritten.
    """
    length = a.shape[-1]
    step = 1
    while step < length:
        b[..., step:] += a[..., step:] * b[..., :-step]  # the product is a new tensor: reads the old b only
        if 2 * step < length:  # the window products are not needed after the last step
            a[..., step:] = a[..., step:] * a[..., :-step]
        step *= 2
    return b


class _LinearRecurrence(torch.autograd.Function):
    """h = scan(a, b) with a hand-written backward: the adjoint is the same recurrence run backwards in time.

    Autograd through the log2(L) scan steps would keep every step's tensors; this keeps only a and h.
    """

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        h = _scan_(a.clone(), b.clone())
        ctx.save_for_backward(a, h)
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h: Tensor) -> tuple[Tensor, Tensor]:
        a, h = ctx.saved_tensors
        # g_t = dL/dh_t (through all later steps) = grad_h_t + a_{t+1} g_{t+1}. In reversed time s = L-1-t this is
        # a forward scan with decay a_{L-s} (the decay at s = 0 multiplies the zero initial state: any value).
        a_rev = torch.empty_like(a)
        a_rev[..., 0] = 0
        a_rev[..., 1:] = a[..., 1:].flip(-1)
        g = _scan_(a_rev, grad_h.flip(-1)).flip(-1)
        grad_a = torch.zeros_like(a)
        grad_a[..., 1:] = g[..., 1:] * h[..., :-1]  # dh_t/da_t = h_{t-1}
        return grad_a, g
