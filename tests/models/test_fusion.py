"""Contextual cross-modal fusion: formulas written out, locality/invariance properties, wiring, learning."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import logoseg  # noqa: F401  (compat fixes before anything else)
from logoseg.models.fusion import (ChannelAdaptation, ContextualCrossModalFusion, ContextualFusionLayer,
                                   DirectionalAttention, LanguageQueryBlock, LinearAttention)
from logoseg.models.ss2d import SS2D


def _phi(x: torch.Tensor) -> torch.Tensor:
    return F.elu(x) + 1


def _kernel_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Attention-matrix form of linear attention: A = phi(q) phi(k)^T, out = A v / rowsum(A)."""
    a = _phi(q) @ _phi(k).transpose(-1, -2)
    return (a @ v) / a.sum(dim=-1, keepdim=True)


def _ln_channels(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """LayerNorm over dim 1 without affine (the default affine is identity)."""
    mean = x.mean(dim=1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps)


def _inputs(B=2, D=8, h=5, w=6, N=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, D, h, w, generator=g), torch.randn(B, D, h, w, generator=g),
            torch.randn(B, N, D, generator=g))


# ----------------------------------------------------------------------------------------- LinearAttention
def test_linear_attention_single_head_matches_formula():
    torch.manual_seed(0)
    D, T, M = 4, 3, 7
    attn = LinearAttention(D, num_heads=1)
    Wq, Wk, Wv, Wo = (torch.randn(D, D) for _ in range(4))
    bq, bk, bv, bo = (torch.randn(D) for _ in range(4))
    with torch.no_grad():
        for lin, W, b in ((attn.q, Wq, bq), (attn.k, Wk, bk), (attn.v, Wv, bv), (attn.proj, Wo, bo)):
            lin.weight.copy_(W)
            lin.bias.copy_(b)
    queries, tokens = torch.randn(1, T, D), torch.randn(1, M, D)
    q, k, v = queries[0] @ Wq.T + bq, tokens[0] @ Wk.T + bk, tokens[0] @ Wv.T + bv
    num = _phi(q) @ (_phi(k).T @ v)                          # (T, D)
    den = _phi(q) @ (_phi(k).T @ torch.ones(M)) + attn.eps   # (T,)
    expected = (num / den[:, None]) @ Wo.T + bo
    torch.testing.assert_close(attn(queries, tokens)[0], expected, rtol=1e-5, atol=1e-5)


def test_linear_attention_multi_head_matches_per_head_kernel_form():
    torch.manual_seed(1)
    D, H, T, M = 8, 2, 4, 9
    attn = LinearAttention(D, num_heads=H)
    queries, tokens = torch.randn(2, T, D), torch.randn(2, M, D)
    q, k, v = attn.q(queries), attn.k(tokens), attn.v(tokens)
    d = D // H
    heads = [_kernel_attention(q[..., i * d:(i + 1) * d], k[..., i * d:(i + 1) * d], v[..., i * d:(i + 1) * d])
             for i in range(H)]
    expected = attn.proj(torch.cat(heads, dim=-1))
    torch.testing.assert_close(attn(queries, tokens), expected, rtol=1e-5, atol=1e-5)


def test_linear_attention_invariant_to_token_order():
    torch.manual_seed(2)
    attn = LinearAttention(8, num_heads=4)
    queries, tokens = torch.randn(2, 5, 8), torch.randn(2, 11, 8)
    perm = torch.randperm(11)
    torch.testing.assert_close(attn(queries, tokens[:, perm]), attn(queries, tokens), rtol=1e-5, atol=1e-6)


def test_heads_must_divide_dim():
    with pytest.raises(ValueError):
        LinearAttention(6, num_heads=4)
    with pytest.raises(ValueError):
        DirectionalAttention(7, num_heads=1)


# ------------------------------------------------------------------------------------ DirectionalAttention
@torch.no_grad()
def test_directional_attention_rows_and_columns():
    torch.manual_seed(3)
    D, h, w, i, j = 8, 5, 6, 2, 4
    da = DirectionalAttention(D, num_heads=2).eval()
    feats, guidance, _ = _inputs(B=1, D=D, h=h, w=w)
    out = da(feats, guidance)
    assert out.shape == (1, 2 * D, h, w)
    bumped = feats.clone()
    bumped[0, :, i, j] += 3.0
    diff = (da(bumped, guidance) - out).abs()[0]
    diff_h, diff_v = diff[:D].amax(dim=0), diff[D:].amax(dim=0)  # (h, w) each
    off_row = torch.ones(h, w, dtype=torch.bool)
    off_row[i] = False
    off_col = torch.ones(h, w, dtype=torch.bool)
    off_col[:, j] = False
    assert diff_h[off_row].max() == 0 and diff_v[off_col].max() == 0
    # and the attention really mixes along the line: other pixels of row i / column j change too
    assert (diff_h[i, torch.arange(w) != j] > 1e-4).all()
    assert (diff_v[torch.arange(h) != i, j] > 1e-4).all()


@torch.no_grad()
def test_directional_attention_uses_matching_channel_halves():
    torch.manual_seed(4)
    D = 8
    da = DirectionalAttention(D, num_heads=2).eval()
    feats, guidance, _ = _inputs(B=1, D=D)
    out = da(feats, guidance)
    for tensor_idx in (0, 1):  # perturb F, then G
        for half in (0, 1):
            args = [feats.clone(), guidance.clone()]
            args[tensor_idx][:, half * D // 2:(half + 1) * D // 2] += torch.randn_like(feats[:, :D // 2])
            new = da(*args)
            same, changed = (slice(D, None), slice(None, D)) if half == 0 else (slice(None, D), slice(D, None))
            torch.testing.assert_close(new[:, same], out[:, same], rtol=0, atol=0)
            assert (new[:, changed] - out[:, changed]).abs().max() > 1e-3


# --------------------------------------------------------------------------------------- ChannelAdaptation
@torch.no_grad()
def test_channel_adaptation_matches_written_out_formula():
    torch.manual_seed(5)
    D, h, w = 3, 4, 5
    ca = ChannelAdaptation(D)
    for p in ca.parameters():  # random weights everywhere, including the LayerNorm affines
        p.copy_(torch.randn_like(p) * 0.5)
    for norm in ca.norms:
        norm.weight += 1.0
    x = torch.randn(2, D, h, w)

    def ln(y, norm):
        return _ln_channels(y) * norm.weight[:, None, None] + norm.bias[:, None, None]

    def conv1x1(y, conv):
        return torch.einsum('oc,bchw->bohw', conv.weight[:, :, 0, 0], y) + conv.bias[:, None, None]

    def depthwise(y, conv):
        padded = F.pad(y, (1, 1, 1, 1))
        out = torch.zeros_like(y)
        for di in range(3):
            for dj in range(3):
                out += conv.weight[:, 0, di, dj][:, None, None] * padded[:, :, di:di + h, dj:dj + w]
        return out + conv.bias[:, None, None]

    def glu(y, conv):
        z = conv1x1(y, conv)
        return z[:, :D] * torch.sigmoid(z[:, D:])

    y = ln(x + conv1x1(x, ca.layers[0]), ca.norms[0])
    y = ln(y + depthwise(y, ca.layers[1]), ca.norms[1])
    y = ln(y + glu(y, ca.layers[2][0]), ca.norms[2])
    y = ln(y + conv1x1(y, ca.layers[3]), ca.norms[3])
    torch.testing.assert_close(ca(x), y, rtol=1e-4, atol=1e-5)


# -------------------------------------------------------------------------------------- LanguageQueryBlock
@torch.no_grad()
def test_language_query_block_treats_classes_as_a_set():
    torch.manual_seed(6)
    D = 8
    block = LanguageQueryBlock(D, num_heads=2).eval()
    visual, _, text = _inputs(B=2, D=D, N=5)
    queries = torch.randn(2, 4, D)
    out = block(queries, visual, text)
    assert out.shape == queries.shape
    torch.testing.assert_close(block(queries, visual, text[:, torch.randperm(5)]), out, rtol=1e-5, atol=1e-6)
    assert (block(queries, visual, torch.randn_like(text)) - out).abs().max() > 1e-3
    assert (block(queries, torch.randn_like(visual), text) - out).abs().max() > 1e-3


@torch.no_grad()
def test_language_query_block_gate_extremes():
    torch.manual_seed(7)
    D = 8
    block = LanguageQueryBlock(D, num_heads=2).eval()
    visual, _, text = _inputs(B=2, D=D)
    queries = torch.randn(2, 4, D)
    block.gate.weight.zero_()
    block.gate.bias.fill_(-1e4)  # g = 0: the queries skip the attention
    expected = queries + block.mlp(block.norm_mlp(queries))
    torch.testing.assert_close(block(queries, visual, text), expected)
    block.gate.bias.fill_(1e4)  # g = 1: the queries are replaced by the attention output
    tokens = torch.cat([visual.flatten(2).transpose(1, 2), text], dim=1)
    a = block.attn(block.norm_q(queries), tokens)
    torch.testing.assert_close(block(queries, visual, text), a + block.mlp(block.norm_mlp(a)))


# ----------------------------------------------------------------------------- layer / module wiring
def _count(module: nn.Module, cls: type) -> int:
    return sum(isinstance(m, cls) for m in module.modules())


@pytest.mark.parametrize('use_dir_attn,use_global_context', [(True, True), (False, True), (True, False),
                                                             (False, False)])
def test_ablation_switches_build_only_used_branches(use_dir_attn, use_global_context):
    torch.manual_seed(8)
    D = 8
    layer = ContextualFusionLayer(D, 2, use_dir_attn=use_dir_attn, use_global_context=use_global_context)
    assert _count(layer, DirectionalAttention) == int(use_dir_attn)
    assert _count(layer, SS2D) == int(use_global_context)
    assert layer.proj.in_channels == (3 if use_global_context else 2) * D
    feats, guidance, text = _inputs(D=D)
    x, q = layer(feats, guidance, torch.randn(2, 4, D), text)
    assert x.shape == feats.shape and q.shape == (2, 4, D)
    assert torch.isfinite(x).all() and torch.isfinite(q).all()


def test_global_branch_sees_guidance_only():
    class Recorder(nn.Module):
        def forward(self, x):
            self.seen = x
            return torch.zeros_like(x)

    D = 8
    layer = ContextualFusionLayer(D, 2)
    layer.global_context = Recorder()
    feats, guidance, text = _inputs(D=D)
    layer(feats, guidance, torch.randn(2, 4, D), text)
    assert layer.global_context.seen is guidance


def test_layer_without_dir_attn_projects_concatenated_inputs():
    torch.manual_seed(9)
    D = 8
    layer = ContextualFusionLayer(D, 2, use_dir_attn=False, use_global_context=False).eval()
    feats, guidance, text = _inputs(D=D)
    with torch.no_grad():
        x, _ = layer(feats, guidance, torch.randn(2, 4, D), text)
        expected = layer.channel(layer.norm(feats + layer.proj(torch.cat([feats, guidance], dim=1))))
    torch.testing.assert_close(x, expected)


@pytest.mark.parametrize('depth', [1, 2, 3])
def test_depth_chains_layers(depth):
    torch.manual_seed(10)
    D, T = 8, 5
    fusion = ContextualCrossModalFusion(D, num_queries=T, depth=depth, num_heads=2).eval()
    assert len(fusion.layers) == depth and fusion.queries.shape == (T, D)
    feats, guidance, text = _inputs(D=D)
    with torch.no_grad():
        x, q = fusion(feats, guidance, text)
        ex, eq = feats, fusion.queries.expand(2, T, D)
        for layer in fusion.layers:  # layer l > 1 fuses the previous X with the same G and text
            ex, eq = layer(ex, guidance, eq, text)
    assert x.shape == feats.shape and q.shape == (2, T, D)
    torch.testing.assert_close(x, ex)
    torch.testing.assert_close(q, eq)


@pytest.mark.parametrize('depth', [0, 4])
def test_bad_depth_raises(depth):
    with pytest.raises(ValueError, match='depth'):
        ContextualCrossModalFusion(8, depth=depth, num_heads=2)


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(11)
    D = 8
    fusion = ContextualCrossModalFusion(D, num_queries=4, depth=2, num_heads=2).double()
    feats, guidance, text = (t.double() for t in _inputs(D=D))
    x, q = fusion(feats, guidance, text)
    # random weights: a plain sum of LayerNorm outputs has no gradient w.r.t. its input
    loss = (x * torch.randn_like(x)).sum() + (q * torch.randn_like(q)).sum()
    loss.backward()
    # float64: a gradient that is zero by construction would show only ~1e-16 of rounding
    missing = [n for n, p in fusion.named_parameters() if p.grad is None or p.grad.abs().max() < 1e-8]
    assert not missing, missing


@torch.no_grad()
def test_images_are_independent_in_eval():
    torch.manual_seed(12)
    D = 8
    fusion = ContextualCrossModalFusion(D, num_queries=4, depth=2, num_heads=2).eval()
    feats, guidance, text = _inputs(B=3, D=D)
    x, q = fusion(feats, guidance, text)
    x1, q1 = fusion(feats[1:2], guidance[1:2], text[1:2])
    torch.testing.assert_close(x[1:2], x1, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(q[1:2], q1, rtol=1e-4, atol=1e-5)


def test_learns_a_per_pixel_target():
    torch.manual_seed(13)
    D, h, w = 8, 6, 6
    fusion = ContextualCrossModalFusion(D, num_queries=4, depth=1, num_heads=2)
    readout = nn.Conv2d(D, 1, 1)
    opt = torch.optim.Adam([*fusion.parameters(), *readout.parameters()], lr=1e-2)

    def batch():
        feats, guidance, text = _inputs(B=8, D=D, h=h, w=w, seed=int(torch.randint(1 << 30, ())))
        return feats, guidance, text, feats[:, :1] - 2 * guidance[:, 1:2]  # needs both F and G

    def loss_on(b):
        feats, guidance, text, target = b
        return F.mse_loss(readout(fusion(feats, guidance, text)[0]), target)

    held_out = batch()
    with torch.no_grad():
        before = loss_on(held_out).item()
    for _ in range(100):
        opt.zero_grad()
        loss_on(batch()).backward()
        opt.step()
    with torch.no_grad():
        after = loss_on(held_out).item()
    assert after < 0.2 * before, (before, after)  # held-out batch: learned, not memorised
