"""Mamba's selective scan (S6): mamba_ssm's CUDA kernel when it is installed, a blocked PyTorch scan otherwise.

For channel d and state n the scan runs, with delta' = softplus(delta + bias) (or delta + bias)::

    h_t = exp(delta'_t A) * h_{t-1} + delta'_t * B_t * u_t,    y_t = sum_n C_t h_t + D u_t

mamba-ssm cannot be imported on machines without CUDA, so its import is guarded and tried once.

The PyTorch scan walks time in blocks of 32 steps (:class:`_BlockedScan`), chosen by measurement on the CPU
against the alternatives below (``python -m logoseg.tools.benchmark``; the figures, with machine and date, are
in ``docs/benchmarks/design.csv`` and ``docs/benchmarks/speed.csv``): its cost stays a small multiple of one
``torch.cumsum`` over a (batch, Dch, N, L) tensor, an order of magnitude below the log-depth scan it replaced,
in time and memory.
Log-depth scans make log2(L) passes over full (batch, Dch, N, L) tensors; chunked scans built on cumulative
sums of log-decays overflow (exp(-sum delta A) for large delta |A|) unless they form per-chunk T x T decay
matrices (T times the work). ``torch.compile`` of a block (Inductor fuses its decays, inputs and recurrence
into one C++ loop) measured somewhat faster forward after many seconds of compilation per process, and
needs a C++ toolchain: not worth it for a layer that runs twice per image. The blocked loop touches each
element a few times while it is in cache and keeps 1/32 of the states for backward. On a GPU it issues one
small kernel per time step, so there mamba-ssm's kernel (``backend='auto'``) is the fast path.
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

    Only (batch, Dch, L)-sized tensors and one block of ``_BLOCK`` time steps of the (batch, Dch, N) state are
    ever materialised, forward and backward; see :class:`_BlockedScan`.
    """
    _check_shapes(u, delta, A, B, C, D, delta_bias)
    dtype = torch.promote_types(u.dtype, torch.float32)
    u32 = u.to(dtype)
    delta32 = delta.to(dtype)
    if delta_bias is not None:
        delta32 = delta32 + delta_bias.to(dtype)[:, None]
    if delta_softplus:
        delta32 = F.softplus(delta32)
    y = _BlockedScan.apply(u32, delta32, A.to(dtype), B.to(dtype), C.to(dtype))
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


# Time steps per block. At the fusion's size blocks of 16, 32 and 64 steps measured within the machine's noise
# of each other (docs/benchmarks/design.csv); 32 keeps a block's (T, batch, Dch, N) buffers, 32 * Dch * N
# floats per batch element, near a core's L2 cache.
_BLOCK = 32


def _time_major(u: Tensor, delta: Tensor, B: Tensor, C: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(batch, Dch, L) u, delta and (batch, G, N, L) B, C -> time-major delta (L, batch, Dch), delta * u,
    B (L, batch, G, N), C (L, batch, G, N), so that one time step is one contiguous slice."""
    dt = delta.permute(2, 0, 1).contiguous()
    return dt, dt * u.permute(2, 0, 1), B.permute(3, 0, 1, 2).contiguous(), C.permute(3, 0, 1, 2).contiguous()


def _block_states(dt: Tensor, du: Tensor, A: Tensor, Bt: Tensor, h0: Tensor, decay: Tensor,
                  states: Tensor) -> None:
    """One block of the recurrence, written into the buffers ``decay`` and ``states`` (both (T, batch, Dch, N)).

    dt, du: (T, batch, Dch); Bt: (T, batch, G, N); h0: (batch, Dch, N), the state before the block.
    decay_t = exp(delta_t A) <= 1 and states_t = h_t = decay_t h_{t-1} + delta_t u_t B_t. Only decays of single
    steps are formed (never exp of a cumulative sum), so long sequences and large delta |A| stay finite.
    """
    steps, batch, channels = dt.shape
    groups, d_state = Bt.shape[2], Bt.shape[3]
    torch.mul(dt[..., None], A, out=decay).exp_()
    torch.mul(du.view(steps, batch, groups, channels // groups, 1), Bt[:, :, :, None],
              out=states.view(steps, batch, groups, channels // groups, d_state))
    states[0].addcmul_(decay[0], h0)
    # The only sequential part: one fused multiply-add over (batch, Dch, N) per step (unbind makes the per-step
    # views in one call instead of three indexing calls per step).
    decays, hs = decay.unbind(0), states.unbind(0)
    for t in range(1, steps):
        hs[t].addcmul_(decays[t], hs[t - 1])


class _BlockedScan(torch.autograd.Function):
    """y_t = sum_n C_t h_t for h_t = exp(delta_t A) h_{t-1} + delta_t u_t B_t, computed in blocks of time steps.

    Shapes: u, delta (batch, Dch, L); A (Dch, N); B, C (batch, G, N, L) -> y (batch, Dch, L).

    Why this formulation (measured against the alternatives on the CPU, one thread, fusion size): each block
    forms its decays and inputs in one vectorised pass, runs the recurrence as one in-place multiply-add per
    time step over all channels and states, and contracts the states with C in one batched matmul. The
    (T, batch, Dch, N) block buffers stay in cache and are reused, so the scan costs its five elementwise
    passes (delta A, its exp, delta u B, the recurrence, the contraction with C) and the per-step calls,
    about four to six ``torch.cumsum`` over a (batch, Dch, N, L) tensor. The log-depth (Hillis-Steele) scan
    this replaces did log2(L) full passes over (batch, Dch, N, L) tensors (18x the cumsum); a chunked scan with
    cumulative sums of log-decays either overflows (exp(-sum delta A) for large delta |A|) or needs per-chunk
    T x T decay matrices (T times the work).

    Backward keeps only the state entering each block (L / T states) and recomputes a block's states from it,
    then runs the adjoint recurrence g_t = C_t dy_t + exp(delta_{t+1} A) g_{t+1} backwards through the block.
    """

    @staticmethod
    def forward(ctx, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor) -> Tensor:
        batch, channels, length = u.shape
        groups, d_state = B.shape[1], B.shape[2]
        dt, du, Bt, Ct = _time_major(u, delta, B, C)
        block = min(_BLOCK, length)
        decay = u.new_empty(block, batch, channels, d_state)
        states = u.new_empty(block, batch, channels, d_state)
        starts = range(0, length, block)
        entry = u.new_empty(len(starts), batch, channels, d_state)  # the state entering each block
        y = u.new_empty(length, batch, channels)
        for k, t0 in enumerate(starts):
            t1 = min(t0 + block, length)
            n = t1 - t0
            if k == 0:
                entry[0].zero_()
            else:  # copied out before the buffer is overwritten
                entry[k] = states[block - 1]
            _block_states(dt[t0:t1], du[t0:t1], A, Bt[t0:t1], entry[k], decay[:n], states[:n])
            # y_t = C_t . h_t as (1, N) x (N, Dch / G) products: faster on CPU than (Dch / G, N) x (N, 1)
            rows = n * batch * groups
            torch.bmm(Ct[t0:t1].reshape(rows, 1, d_state), states[:n].view(rows, channels // groups, d_state).mT,
                      out=y[t0:t1].view(rows, 1, channels // groups))
        ctx.save_for_backward(u, A, dt, du, Bt, Ct, entry)
        return y.permute(1, 2, 0)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y: Tensor) -> tuple[Tensor, ...]:
        u, A, dt, du, Bt, Ct, entry = ctx.saved_tensors
        batch, channels, length = u.shape
        groups, d_state = Bt.shape[2], Bt.shape[3]
        per_group = channels // groups
        dy = grad_y.permute(2, 0, 1).contiguous()  # (L, batch, Dch)
        block = min(_BLOCK, length)
        decay = u.new_empty(block, batch, channels, d_state)
        states = u.new_empty(block, batch, channels, d_state)
        adjoint = u.new_empty(block, batch, channels, d_state)
        grad_dt = torch.empty_like(dt)  # dL/d delta through the decays
        grad_du = torch.empty_like(du)  # dL/d (delta u)
        grad_A_rows = u.new_zeros(batch, channels, d_state)
        grad_Bt, grad_Ct = torch.empty_like(Bt), torch.empty_like(Ct)
        carry = u.new_zeros(batch, channels, d_state)  # exp(delta_{t1} A) g_{t1} from the block after
        starts = list(range(0, length, block))
        for k in reversed(range(len(starts))):
            t0 = starts[k]
            t1 = min(t0 + block, length)
            n = t1 - t0
            a, h, g = decay[:n], states[:n], adjoint[:n]
            _block_states(dt[t0:t1], du[t0:t1], A, Bt[t0:t1], entry[k], a, h)
            rows = n * batch * groups  # one (Dch / G, N) matrix per time step, batch element and group
            h_rows = h.view(rows, per_group, d_state)
            # y_t = C_t . h_t: dC_t = sum over the group's channels of dy_t h_t, dh_t = dy_t C_t
            torch.bmm(dy[t0:t1].view(rows, 1, per_group), h_rows, out=grad_Ct[t0:t1].view(rows, 1, d_state))
            torch.mul(dy[t0:t1].view(n, batch, groups, per_group, 1), Ct[t0:t1, :, :, None],
                      out=g.view(n, batch, groups, per_group, d_state))
            g[n - 1] += carry
            decays, gs = a.unbind(0), g.unbind(0)
            for t in range(n - 2, -1, -1):
                gs[t].addcmul_(decays[t + 1], gs[t + 1])
            carry = a[0] * g[0]
            # h_t = a_t h_{t-1} + du_t B_t: d du_t = g_t . B_t, dB_t = sum over the group of g_t du_t
            g_rows = g.view(rows, per_group, d_state)
            torch.bmm(Bt[t0:t1].reshape(rows, 1, d_state), g_rows.mT, out=grad_du[t0:t1].view(rows, 1, per_group))
            torch.bmm(du[t0:t1].view(rows, 1, per_group), g_rows, out=grad_Bt[t0:t1].view(rows, 1, d_state))
            # a_t = exp(delta_t A): d(delta_t A) = g_t h_{t-1} a_t; h_{-1} of the block is its entry state
            a[1:].mul_(h[:-1])
            a[0].mul_(entry[k])
            a.mul_(g)
            torch.sum(torch.mul(a, A, out=h), -1, out=grad_dt[t0:t1])  # h is not needed any more
            grad_A_rows += a.mul_(dt[t0:t1, :, :, None]).sum(0)  # an einsum would copy a into (Dch, N, T batch)
        grad_delta = grad_dt + grad_du * u.permute(2, 0, 1)
        grad_u = grad_du * dt
        return (grad_u.permute(1, 2, 0), grad_delta.permute(1, 2, 0), grad_A_rows.sum(0),
                grad_Bt.permute(1, 2, 3, 0), grad_Ct.permute(1, 2, 3, 0))
