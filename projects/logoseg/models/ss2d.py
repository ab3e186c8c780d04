"""SS2D: VMamba's 2D selective-scan block (Liu et al. 2024), the global-context branch of the fusion module.

A feature map is read as four 1D sequences (cross_scan), each sequence is run through a selective state-space
model with its own input-dependent step sizes and B, C, and the four outputs are mapped back to pixels and summed
(cross_merge): every output pixel depends on every input pixel, at cost linear in H * W.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .selective_scan import BACKENDS, selective_scan

NUM_DIRECTIONS = 4


def cross_scan(x: Tensor) -> Tensor:
    """Unfold a map into four scan orders: (B, C, H, W) -> (B, 4, C, H*W).

    Direction 0 is row-major, 1 column-major, 2 and 3 are 0 and 1 reversed.
    """
    rows = x.flatten(2)
    cols = x.transpose(2, 3).flatten(2)
    forward = torch.stack([rows, cols], dim=1)
    return torch.cat([forward, forward.flip(-1)], dim=1)


def cross_merge(y: Tensor, height: int, width: int) -> Tensor:
    """Inverse of :func:`cross_scan`, summed over directions: (B, 4, C, H*W) -> (B, C, H*W) in row-major order."""
    batch, directions, channels, length = y.shape
    if directions != NUM_DIRECTIONS or length != height * width:
        raise ValueError(f'expected (B, 4, C, {height}*{width}) scan outputs, got {tuple(y.shape)}')
    y = y[:, :2] + y[:, 2:].flip(-1)  # reversed directions back into forward order
    cols = y[:, 1].reshape(batch, channels, width, height).transpose(2, 3).reshape(batch, channels, length)
    return y[:, 0] + cols


class SS2D(nn.Module):
    """VMamba's 2D selective-scan block; LoGoSeg's global branch SS2D(G) of eq 9.

    in_proj -> (x, z); x: depthwise conv + SiLU -> cross_scan -> per-direction selective scans (dt, B, C from x)
    -> cross_merge -> LayerNorm; gated by SiLU(z); out_proj. Shapes: (B, dim, H, W) -> (B, dim, H, W).

    Args:
        dim: input and output channels.
        d_state: state size N per channel.
        expand: inner width d_inner = int(expand * dim).
        dt_rank: rank of the step-size projection; 'auto' = ceil(dim / 16).
        d_conv: odd kernel size of the depthwise convolution.
        scan_backend: selective-scan backend ('auto', 'torch', 'cuda'), see :func:`selective_scan`.
    """

    def __init__(self, dim: int, d_state: int = 16, expand: float = 2.0, dt_rank: int | str = 'auto',
                 d_conv: int = 3, scan_backend: str = 'auto') -> None:
        super().__init__()
        if dt_rank == 'auto':
            dt_rank = math.ceil(dim / 16)
        elif isinstance(dt_rank, str):
            raise ValueError(f"dt_rank must be an int or 'auto', got {dt_rank!r}")
        if d_conv % 2 != 1:
            raise ValueError(f'd_conv must be odd to keep the map size, got {d_conv}')
        if scan_backend not in BACKENDS:
            raise ValueError(f'unknown selective-scan backend {scan_backend!r}; expected one of {BACKENDS}')
        d_inner = int(expand * dim)
        self.d_inner, self.d_state, self.dt_rank = d_inner, d_state, dt_rank
        self.scan_backend = scan_backend

        self.in_proj = nn.Linear(dim, 2 * d_inner, bias=False)
        self.conv = nn.Conv2d(d_inner, d_inner, d_conv, padding=d_conv // 2, groups=d_inner)
        # Per-direction projections are stacked parameters (not nn.Linear) so that a model-wide Linear
        # re-initialisation leaves Mamba's step-size initialisation intact.
        bound = d_inner ** -0.5  # nn.Linear's default range
        self.x_proj_weight = nn.Parameter(  # d_inner -> (dt_rank + 2 d_state)
            torch.empty(NUM_DIRECTIONS, dt_rank + 2 * d_state, d_inner).uniform_(-bound, bound))
        bound = dt_rank ** -0.5
        self.dt_proj_weight = nn.Parameter(  # dt_rank -> d_inner
            torch.empty(NUM_DIRECTIONS, d_inner, dt_rank).uniform_(-bound, bound))
        self.dt_proj_bias = nn.Parameter(_inverse_softplus_dt(NUM_DIRECTIONS, d_inner))
        # A = -exp(A_log) = -(1, ..., d_state) for every channel of every direction (S4D-real); D = 1.
        self.A_log = nn.Parameter(
            torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(NUM_DIRECTIONS * d_inner, 1))
        self.D = nn.Parameter(torch.ones(NUM_DIRECTIONS * d_inner))
        self.norm = nn.LayerNorm(d_inner)
        self.out_proj = nn.Linear(d_inner, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """(B, dim, H, W) -> (B, dim, H, W)."""
        batch, _, height, width = x.shape
        xs, z = self.in_proj(x.permute(0, 2, 3, 1)).chunk(2, dim=-1)  # (B, H, W, d_inner) each
        xs = F.silu(self.conv(xs.permute(0, 3, 1, 2)))  # (B, d_inner, H, W)
        y = self.norm(self._global_scan(xs).transpose(1, 2))  # (B, H*W, d_inner)
        y = y.reshape(batch, height, width, self.d_inner) * F.silu(z)
        return self.out_proj(y).permute(0, 3, 1, 2)

    def _global_scan(self, x: Tensor) -> Tensor:
        """Four directional selective scans: (B, d_inner, H, W) -> (B, d_inner, H*W)."""
        batch, channels, height, width = x.shape
        seqs = cross_scan(x)  # (B, 4, d_inner, L)
        proj = torch.einsum('bkdl,kcd->bkcl', seqs, self.x_proj_weight)  # (B, 4, dt_rank + 2N, L)
        dt, B_ssm, C_ssm = proj.split([self.dt_rank, self.d_state, self.d_state], dim=2)
        dt = torch.einsum('bkrl,kdr->bkdl', dt, self.dt_proj_weight)  # (B, 4, d_inner, L)
        # Channels are direction-major (4 * d_inner), so channel block k uses direction k's B, C (G = 4).
        y = selective_scan(seqs.flatten(1, 2), dt.flatten(1, 2), -torch.exp(self.A_log.float()),
                           B_ssm, C_ssm, self.D, delta_bias=self.dt_proj_bias.flatten(), delta_softplus=True,
                           backend=self.scan_backend)  # (B, 4 * d_inner, L)
        return cross_merge(y.view(batch, NUM_DIRECTIONS, channels, height * width), height, width)


def _inverse_softplus_dt(directions: int, channels: int, dt_min: float = 1e-3, dt_max: float = 1e-1,
                         dt_floor: float = 1e-4) -> Tensor:
    """Mamba's step-size bias: softplus(bias) = dt with dt log-uniform in [dt_min, dt_max]."""
    log_dt = torch.rand(directions, channels) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
    dt = torch.exp(log_dt).clamp(min=dt_floor)
    return dt + torch.log(-torch.expm1(-dt))  # inverse of softplus: log(exp(dt) - 1)
