"""Contextual cross-modal fusion (LoGoSeg section 2.3).

Fuses the middle-layer CLIP features F_mid with the region-aware guidance G (local directional attention +
global SS2D context), refines the channels, then lets T learnable queries read the fused map and the class
text tokens. Shapes: B batch, D fusion dim, h x w feature grid, T queries, N classes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .ss2d import SS2D

__all__ = [
    'ChannelAdaptation',
    'ContextualCrossModalFusion',
    'ContextualFusionLayer',
    'DirectionalAttention',
    'LanguageQueryBlock',
    'LayerNorm2d',
    'LinearAttention',
]


def _check_heads(dim: int, num_heads: int) -> None:
    if num_heads < 1 or dim % num_heads:
        raise ValueError(f'dim ({dim}) must be divisible by num_heads ({num_heads})')


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a (B, D, h, w) map, independently at every pixel."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class DirectionalAttention(nn.Module):
    """Rectangular self-attention, eq 8: X_local = [MHSA_h(F_h || G_h), MHSA_v(F_v || G_v)].

    F and G are split into channel halves; the first halves attend along each row (w tokens), the second
    halves along each column (h tokens). Each branch is a pre-LN residual block x + MHSA(LN(x)) so that the
    unattended [F_half || G_half] still reaches F_proj (the DA ablation drops only the attention term).
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f'DirectionalAttention needs an even dim to split F and G into halves, got {dim}')
        _check_heads(dim, num_heads)
        self.norm_h = nn.LayerNorm(dim)
        self.norm_v = nn.LayerNorm(dim)
        self.attn_h = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.attn_v = nn.MultiheadAttention(dim, num_heads, batch_first=True)

    @staticmethod
    def _attend(x: Tensor, norm: nn.LayerNorm, attn: nn.MultiheadAttention) -> Tensor:
        """(S, L, D) sequences -> (S, L, D)."""
        y = norm(x)
        return x + attn(y, y, y, need_weights=False)[0]

    def forward(self, feats: Tensor, guidance: Tensor) -> Tensor:
        """feats F (B, D, h, w), guidance G (B, D, h, w) -> X_local (B, 2D, h, w)."""
        B, D, h, w = feats.shape
        f_h, f_v = feats.chunk(2, dim=1)
        g_h, g_v = guidance.chunk(2, dim=1)
        x_h = torch.cat([f_h, g_h], dim=1).permute(0, 2, 3, 1)  # (B, h, w, D)
        x_v = torch.cat([f_v, g_v], dim=1).permute(0, 3, 2, 1)  # (B, w, h, D)
        rows = self._attend(x_h.reshape(B * h, w, D), self.norm_h, self.attn_h)
        cols = self._attend(x_v.reshape(B * w, h, D), self.norm_v, self.attn_v)
        rows = rows.reshape(B, h, w, D).permute(0, 3, 1, 2)
        cols = cols.reshape(B, w, h, D).permute(0, 3, 2, 1)
        return torch.cat([rows, cols], dim=1)


class ChannelAdaptation(nn.Module):
    """1x1 conv, depth-wise 3x3 conv, GLU block, 1x1 conv; each as x = LN(x + f(x)). (B, D, h, w) -> same."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([
            nn.Conv2d(dim, dim, 1),
            nn.Conv2d(dim, dim, 3, padding=1, groups=dim),
            nn.Sequential(nn.Conv2d(dim, 2 * dim, 1), nn.GLU(dim=1)),
            nn.Conv2d(dim, dim, 1),
        ])
        self.norms = nn.ModuleList([LayerNorm2d(dim) for _ in self.layers])

    def forward(self, x: Tensor) -> Tensor:
        for layer, norm in zip(self.layers, self.norms):
            x = norm(x + layer(x))
        return x


class LinearAttention(nn.Module):
    """Multi-head linear attention with feature map phi(x) = elu(x) + 1.

    out = phi(q) (phi(k)^T v) / (phi(q) (phi(k)^T 1) + eps) per head: cost O(M) in the number of tokens M,
    so the queries can read all h*w visual tokens plus the N text tokens.
    """

    def __init__(self, dim: int, num_heads: int, eps: float = 1e-6) -> None:
        super().__init__()
        _check_heads(dim, num_heads)
        self.num_heads = num_heads
        self.eps = eps
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def _heads(self, x: Tensor) -> Tensor:
        B, L, D = x.shape
        return x.reshape(B, L, self.num_heads, D // self.num_heads).transpose(1, 2)  # (B, heads, L, d)

    def forward(self, queries: Tensor, tokens: Tensor) -> Tensor:
        """queries (B, T, D), tokens (B, M, D) -> (B, T, D)."""
        q, k, v = self._heads(self.q(queries)), self._heads(self.k(tokens)), self._heads(self.v(tokens))
        # Sums over M ~ h*w + N tokens and the division by them lose precision in half precision.
        with torch.autocast(device_type=q.device.type, enabled=False):
            q, k, v = F.elu(q.float()) + 1, F.elu(k.float()) + 1, v.float()
            kv = torch.einsum('bhmd,bhme->bhde', k, v)
            denom = torch.einsum('bhtd,bhd->bht', q, k.sum(dim=2)) + self.eps
            out = torch.einsum('bhtd,bhde->bhte', q, kv) / denom.unsqueeze(-1)
        out = out.to(queries.dtype).transpose(1, 2).flatten(2)  # (B, T, D)
        return self.proj(out)


class LanguageQueryBlock(nn.Module):
    """Queries read [visual tokens || text tokens] (eq 10), then token-wise gated fusion and a residual MLP.

    q' = g * a + (1 - g) * q with g = sigmoid(W_g [q || a]), a = LinearAttention(LN(q), tokens);
    q'' = q' + MLP(LN(q')). Text tokens are not normalised: their magnitude carries the object prior
    (T_hat = w_n * Tbar_n), which a LayerNorm would erase.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm_q = nn.LayerNorm(dim)
        self.attn = LinearAttention(dim, num_heads)
        self.gate = nn.Linear(2 * dim, dim)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, queries: Tensor, visual: Tensor, text: Tensor) -> Tensor:
        """queries (B, T, D), visual (B, D, h, w), text (B, N, D) -> queries (B, T, D)."""
        tokens = torch.cat([visual.flatten(2).transpose(1, 2), text], dim=1)  # (B, h*w + N, D)
        a = self.attn(self.norm_q(queries), tokens)
        g = torch.sigmoid(self.gate(torch.cat([queries, a], dim=-1)))
        queries = g * a + (1 - g) * queries
        return queries + self.mlp(self.norm_mlp(queries))


class ContextualFusionLayer(nn.Module):
    """One fusion layer: eq 9, X = LN(F + F_proj([X_local || SS2D(G)])), channel adaptation, query block.

    Ablations: ``use_dir_attn=False`` uses X_local = [F || G] unattended; ``use_global_context=False`` drops
    the SS2D branch (F_proj then maps 2D -> D instead of 3D -> D). Unused branches are not built.
    """

    def __init__(self, dim: int, num_heads: int, use_dir_attn: bool = True, use_global_context: bool = True,
                 ss2d_cfg: dict | None = None) -> None:
        super().__init__()
        self.dir_attn = DirectionalAttention(dim, num_heads) if use_dir_attn else None
        self.global_context = SS2D(dim, **(ss2d_cfg or {})) if use_global_context else None
        in_channels = 3 * dim if use_global_context else 2 * dim
        self.proj = nn.Conv2d(in_channels, dim, 1)
        self.norm = LayerNorm2d(dim)
        self.channel = ChannelAdaptation(dim)
        self.query_block = LanguageQueryBlock(dim, num_heads)

    def forward(self, feats: Tensor, guidance: Tensor, queries: Tensor, text: Tensor) -> tuple[Tensor, Tensor]:
        """feats (B, D, h, w), guidance (B, D, h, w), queries (B, T, D), text (B, N, D)
        -> (X (B, D, h, w), queries (B, T, D))."""
        if self.dir_attn is not None:
            branches = [self.dir_attn(feats, guidance)]
        else:
            branches = [feats, guidance]
        if self.global_context is not None:
            branches.append(self.global_context(guidance))
        x = self.norm(feats + self.proj(torch.cat(branches, dim=1)))
        x = self.channel(x)
        return x, self.query_block(queries, x, text)


class ContextualCrossModalFusion(nn.Module):
    """Stack of ``depth`` fusion layers with T learnable queries Q_lrn (section 2.3).

    Layer 1 fuses F_mid with G; layer l > 1 fuses the previous X with the same G. Every layer reads the same
    text tokens, and the queries flow from layer to layer.
    """

    def __init__(self, dim: int, num_queries: int = 16, depth: int = 2, num_heads: int = 4,
                 use_dir_attn: bool = True, use_global_context: bool = True,
                 ss2d_cfg: dict | None = None) -> None:
        super().__init__()
        if not 1 <= depth <= 3:
            raise ValueError(f'fusion depth must be 1, 2 or 3 (paper Table 3), got {depth}')
        self.queries = nn.Parameter(torch.empty(num_queries, dim).normal_(std=0.02))
        self.layers = nn.ModuleList([
            ContextualFusionLayer(dim, num_heads, use_dir_attn=use_dir_attn,
                                  use_global_context=use_global_context, ss2d_cfg=ss2d_cfg)
            for _ in range(depth)
        ])

    def forward(self, feats: Tensor, guidance: Tensor, text: Tensor) -> tuple[Tensor, Tensor]:
        """F_mid (B, D, h, w), G (B, D, h, w), E_text (B, N, D) -> (X_fused (B, D, h, w), queries (B, T, D))."""
        x = feats
        queries = self.queries.unsqueeze(0).expand(feats.shape[0], -1, -1)
        for layer in self.layers:
            x, queries = layer(x, guidance, queries, text)
        return x, queries
