"""Guided decoder (paper sec 2.4, eq 11): query correlation maps upsampled under CLIP guidance, then
per-class logits from the current vocabulary's text embeddings."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format


class GuidedUpsampleStage(nn.Module):
    """One stage of eq 11: F_{i+1} = Decoder_i(Upsample(F_i), S_i).

    Learnable x2 upsampling (transposed conv), then a 3x3 conv whose output is modulated (FiLM) by the
    guidance S_i resized to the new resolution.
    """

    def __init__(self, in_channels: int, out_channels: int, guidance_channels: int):
        super().__init__()
        self.upsample = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.conv = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.norm = nn.GroupNorm(1, out_channels)
        self.guidance_proj = nn.Conv2d(guidance_channels, 2 * out_channels, kernel_size=1)
        nn.init.zeros_(self.guidance_proj.weight)  # start as an unmodulated conv
        nn.init.zeros_(self.guidance_proj.bias)

    def forward(self, x: torch.Tensor, guidance: torch.Tensor, repeats: int) -> torch.Tensor:
        """x (B*T, C_in, h, w), guidance (B, C_s, h_s, w_s) shared by the T query maps -> (B*T, C_out, 2h, 2w)."""
        x = self.upsample(x)
        # The 1x1 projection commutes with bilinear resizing (its weights sum to 1 per pixel): projecting first
        # resizes 2 * C_out channels instead of C_s and runs the projection at S_i's resolution, not 4-16x that.
        film = F.interpolate(self.guidance_proj(guidance), size=x.shape[-2:], mode='bilinear', align_corners=False)
        film = film.contiguous(memory_format=_memory_format(x))  # elementwise ops at equal strides
        scale, shift = film.unsqueeze(1).chunk(2, dim=2)  # (B, 1, C_out, H, W), broadcast over the T maps
        y = self.norm(self.conv(x))
        y = torch.addcmul(shift, y.view(-1, repeats, *y.shape[1:]), 1 + scale)
        return x + F.gelu(y.flatten(0, 1))


class GuidedDecoder(nn.Module):
    """Eq 11 and the per-class projection that precedes eq 12.

    The correlation tensor F_1 (B, D, T, h, w) is X_fused modulated by each query (channel-wise product).
    Two guided stages decode every query map to 4x resolution; a 1x1 conv over the T query maps gives one
    pixel embedding Z (B, E, 4h, 4w); class n scores ``scale * cos(Z, W_e Tbar_n) + bias``, so the number
    of classes N is whatever the current vocabulary has.

    Args:
        dim: D, channels of X_fused and of the queries.
        num_queries: T.
        clip_dim: C, channels of the class embeddings (the prompt centres Tbar).
        guidance_channels: channels of (S_1, S_2).
        channels: output channels of the two stages; the last is the embedding size E.
    """

    def __init__(self, dim: int, num_queries: int, clip_dim: int, guidance_channels: Sequence[int],
                 channels: Sequence[int] = (64, 32), logit_scale: float = 10.0, logit_bias: float = -4.0):
        super().__init__()
        if len(channels) != 2 or len(guidance_channels) != 2:
            raise ValueError('the decoder has two stages: give two channels and two guidance_channels')
        self.num_queries = num_queries
        self.stages = nn.ModuleList([
            GuidedUpsampleStage(dim, channels[0], guidance_channels[0]),
            GuidedUpsampleStage(channels[0], channels[1], guidance_channels[1]),
        ])
        self.merge_queries = nn.Conv2d(num_queries * channels[1], channels[1], kernel_size=1)
        self.class_embed = nn.Linear(clip_dim, channels[1])
        self.log_scale = nn.Parameter(torch.tensor(float(logit_scale)).log())
        self.bias = nn.Parameter(torch.tensor(float(logit_bias)))

    @staticmethod
    def correlation(fused: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """F_1[b, :, t] = X_fused[b] * Q[b, t]: (B, D, h, w), (B, T, D) -> (B, D, T, h, w)."""
        return fused.unsqueeze(2) * queries.transpose(1, 2)[..., None, None]

    def forward(self, fused: torch.Tensor, queries: torch.Tensor, guidance: Sequence[torch.Tensor],
                class_embeds: torch.Tensor) -> torch.Tensor:
        """fused (B, D, h, w), queries (B, T, D), guidance [S_1, S_2], class_embeds (B, N, C) -> (B, N, 4h, 4w)."""
        batch, dim, height, width = fused.shape
        corr = self.correlation(fused, queries)
        # channels-last: the stages' convolutions run faster on CPU (no layout reorders inside oneDNN) and
        # use the NHWC kernels on GPUs
        x = corr.permute(0, 2, 1, 3, 4).reshape(batch * self.num_queries, dim, height, width).contiguous(
            memory_format=torch.channels_last)
        for stage, s in zip(self.stages, guidance):
            x = stage(x, s, self.num_queries)
        pixels = F.normalize(self.merge_query_maps(x), dim=-1)  # (B, 4h * 4w, E)
        classes = F.normalize(self.class_embed(class_embeds), dim=-1)
        # the scale goes on the N class vectors rather than the N * 4h * 4w logits; the logits come out
        # channels-last (pixel-major), the layout their bilinear resizes run fastest in
        logits = torch.bmm(pixels, (self.log_scale.exp() * classes).mT) + self.bias  # (B, 4h * 4w, N)
        return logits.view(batch, 4 * height, 4 * width, -1).permute(0, 3, 1, 2)

    def merge_query_maps(self, maps: torch.Tensor) -> torch.Tensor:
        """The 1x1 conv ``merge_queries`` over the T query maps stacked as channels: (B*T, E, H, W) -> (B, H*W, E).

        Computed as T (H*W, E) x (E, E) products summed over the queries, which read channels-last maps in place;
        stacking them as channels first would copy every map (slower, forward and backward:
        docs/benchmarks/design.csv).
        """
        _, channels, height, width = maps.shape
        pixels = maps.permute(0, 2, 3, 1).reshape(-1, self.num_queries, height * width, channels)
        weight = self.merge_queries.weight.view(-1, self.num_queries, channels).permute(1, 2, 0)  # (T, E, E_out)
        return torch.matmul(pixels, weight).sum(1) + self.merge_queries.bias
