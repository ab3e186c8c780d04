"""LoGoSeg decode head: object prior, region-aware alignment, contextual fusion and guided decoding."""
from __future__ import annotations

import inspect
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, SampleList

from ..utils.errors import LoGoSegUserError
from ..utils.options import (check_bool, check_choice, check_int, check_keys, check_positive, check_registered,
                             parameter_names)
from .decoder import GuidedDecoder
from .fusion import ContextualCrossModalFusion
from .region_alignment import ObjectPrior, PriorGuidedRegionAlignment
from .selective_scan import BACKENDS
from .ss2d import SS2D

WHERE = 'model.decode_head'


def resize_class_maps(maps: torch.Tensor, size: tuple[int, int], align_corners: bool = False) -> torch.Tensor:
    """Bilinear resize of per-class maps (B, N, h, w) -> (B, N, *size), in channels-last memory.

    With many classes PyTorch's CPU bilinear kernel is faster on channels-last tensors, with bit-identical
    results (docs/benchmarks/design.csv).
    """
    return F.interpolate(maps.contiguous(memory_format=torch.channels_last), size=size, mode='bilinear',
                         align_corners=align_corners)


def standardize_over_classes(prior: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """z-score of the prior over the classes of each image: (B, N) -> (B, N); zero when N == 1."""
    if prior.shape[1] == 1:
        return torch.zeros_like(prior)
    return (prior - prior.mean(dim=1, keepdim=True)) / (prior.std(dim=1, keepdim=True) + eps)


@MODELS.register_module()
class LoGoSegHead(BaseModule):
    """From CLIP features and prompt embeddings to per-class logits at 1/4 of the input resolution.

    The segmentor fills ``clip_dim``, ``mid_channels`` and ``guidance_channels`` from its image encoder.

    Args:
        guidance_dim: D, width of guidance, fusion and queries.
        num_queries: T learnable queries.
        region_grid: r, the alignment uses K = r * r regions.
        tau, beta: sharpness of the softmax over regions (eq 4) and over classes (eq 7).
        prior_lambda: lambda of the object prior: a float in [0, 1] or ``'learnable'``.
        use_object_prior: OP of Table 2; off means lambda = 0 and no prior on the logits.
        prior_on_logits: the prior also shifts each class's logits by lambda * kappa * zscore(p) (no kappa is
            built when lambda is fixed at 0: its gradient would be 0).
        use_region_alignment: RA of Table 2; off gives per-pixel guidance G = Conv1x1(V).
        use_fusion: CCF of Table 2; off gives X_fused = Conv1x1([F_mid || G]) and unattended queries.
        use_dir_attn, use_global_context: DA and GC of Table 3.
        fusion_depth: stacked fusion layers (Table 3).
        loss_decode: the loss config (eq 13).
        ignore_index: label value excluded from the loss.

    Raises:
        LoGoSegUserError: an option out of range or an unknown key in ``loss_decode`` / ``ss2d_cfg``, in one
            line naming the option (as ``model.decode_head.<option>``), its value and what is allowed.
    """

    def __init__(self, clip_dim: int, mid_channels: int, guidance_channels: Sequence[int],
                 guidance_dim: int = 128, num_queries: int = 16, region_grid: int = 6, tau: float = 100.0,
                 beta: float = 100.0, prior_lambda: float | str = 1.0, use_object_prior: bool = True,
                 prior_on_logits: bool = True, use_region_alignment: bool = True, use_fusion: bool = True,
                 use_dir_attn: bool = True, use_global_context: bool = True, fusion_depth: int = 2,
                 num_heads: int = 4, ss2d_cfg: dict | None = None, decoder_channels: Sequence[int] = (64, 32),
                 loss_decode: ConfigType = dict(type='MaskedBCELoss'), ignore_index: int = 255,
                 align_corners: bool = False, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self._check_options(locals())
        self.ignore_index = ignore_index
        self.align_corners = align_corners
        self.threshold = 0.5  # MMSeg binarises single-class outputs with sigmoid(logit) > threshold
        self.use_object_prior = use_object_prior
        self.prior_on_logits = use_object_prior and prior_on_logits and prior_lambda != 0
        self.prior = ObjectPrior(prior_lambda if use_object_prior else 0.0)
        if self.prior_on_logits:
            self.prior_logit_scale = nn.Parameter(torch.ones(()))  # kappa
        if use_region_alignment:
            self.alignment = PriorGuidedRegionAlignment(clip_dim, guidance_dim, region_grid, tau=tau, beta=beta)
        else:
            self.pixel_guidance = nn.Conv2d(clip_dim, guidance_dim, kernel_size=1)
        self.mid_proj = nn.Sequential(nn.Conv2d(mid_channels, guidance_dim, kernel_size=1),
                                      nn.GroupNorm(1, guidance_dim))
        if use_fusion:
            self.text_proj = nn.Linear(clip_dim, guidance_dim)  # E_text of eq 10
            self.fusion = ContextualCrossModalFusion(
                guidance_dim, num_queries=num_queries, depth=fusion_depth, num_heads=num_heads,
                use_dir_attn=use_dir_attn, use_global_context=use_global_context, ss2d_cfg=ss2d_cfg)
        else:
            self.plain_fusion = nn.Conv2d(2 * guidance_dim, guidance_dim, kernel_size=1)
            self.queries = nn.Parameter(torch.randn(num_queries, guidance_dim) * 0.02)
        self.decoder = GuidedDecoder(guidance_dim, num_queries, clip_dim, guidance_channels, decoder_channels)
        self.loss_decode = MODELS.build(loss_decode)

    @classmethod
    def check_config(cls, head_cfg: dict) -> None:
        """Check a ``decode_head`` config's values without building a layer (the segmentor fills the channels)."""
        options = {k: v for k, v in dict(head_cfg).items() if k not in ('type', '_scope_')}
        bound = inspect.signature(cls.__init__).bind(None, clip_dim=1, mid_channels=1, guidance_channels=(1, 1),
                                                        **options)
        bound.apply_defaults()
        cls._check_options(bound.arguments)
        MODELS.build(bound.arguments['loss_decode'])  # a loss has no layers; its own checks run

    @staticmethod
    def _check_options(options: dict) -> None:
        """Every option the config sets, checked before any layer is built."""
        for name in ('use_object_prior', 'prior_on_logits', 'use_region_alignment', 'use_fusion', 'use_dir_attn',
                     'use_global_context', 'align_corners'):
            check_bool(f'{WHERE}.{name}', options[name])
        lam = options['prior_lambda']
        if not (lam == 'learnable' or isinstance(lam, (int, float)) and not isinstance(lam, bool) and 0 <= lam <= 1):
            raise LoGoSegUserError(f"{WHERE}.prior_lambda={lam!r}: use a number in [0, 1] or 'learnable'")
        for name in ('guidance_dim', 'num_queries', 'region_grid', 'num_heads'):
            check_int(f'{WHERE}.{name}', options[name])
        check_int(f'{WHERE}.fusion_depth', options['fusion_depth'], 1, 3, ' (the depths of paper Table 3)')
        check_positive(f'{WHERE}.tau', options['tau'])
        check_positive(f'{WHERE}.beta', options['beta'])
        check_int(f'{WHERE}.ignore_index', options['ignore_index'], minimum=0)
        channels = options['decoder_channels']
        if not (isinstance(channels, (list, tuple)) and len(channels) == 2
                and all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in channels)):
            raise LoGoSegUserError(f'{WHERE}.decoder_channels={channels!r}: use two positive integers, one per '
                                   'decoder stage, e.g. (64, 32)')
        dim, heads = options['guidance_dim'], options['num_heads']
        if options['use_fusion'] and dim % heads:
            raise LoGoSegUserError(f'{WHERE}.num_heads={heads}: must divide guidance_dim={dim}')
        if options['use_fusion'] and options['use_dir_attn'] and dim % 2:
            raise LoGoSegUserError(f'{WHERE}.guidance_dim={dim}: directional attention splits it into halves; '
                                   'use an even number')
        ss2d_cfg = options['ss2d_cfg']
        if ss2d_cfg is not None:
            if not isinstance(ss2d_cfg, dict):
                raise LoGoSegUserError(f'{WHERE}.ss2d_cfg={ss2d_cfg!r}: use a dict of SS2D options')
            check_keys(ss2d_cfg, parameter_names(SS2D) - {'dim'}, f'{WHERE}.ss2d_cfg')
            for name in ('d_state', 'd_conv'):
                if name in ss2d_cfg:
                    check_int(f'{WHERE}.ss2d_cfg.{name}', ss2d_cfg[name])
            if ss2d_cfg.get('d_conv', 1) % 2 == 0:
                raise LoGoSegUserError(f'{WHERE}.ss2d_cfg.d_conv={ss2d_cfg["d_conv"]}: use an odd kernel size, '
                                       'which keeps the map size')
            if 'expand' in ss2d_cfg and check_positive(f'{WHERE}.ss2d_cfg.expand', ss2d_cfg['expand']) * dim < 1:
                raise LoGoSegUserError(f'{WHERE}.ss2d_cfg.expand={ss2d_cfg["expand"]}: leaves no inner channel '
                                       f'at guidance_dim={dim}')
            if ss2d_cfg.get('dt_rank', 'auto') != 'auto':
                check_int(f'{WHERE}.ss2d_cfg.dt_rank', ss2d_cfg['dt_rank'], why=" or 'auto'")
            if 'scan_backend' in ss2d_cfg:
                check_choice(f'{WHERE}.ss2d_cfg.scan_backend', ss2d_cfg['scan_backend'], BACKENDS)
        check_registered(options['loss_decode'], MODELS, f'{WHERE}.loss_decode')

    def forward(self, inputs: dict) -> torch.Tensor:
        """``inputs``: visual V (B, C, h, w), mid, guidance [S_1, S_2], text T (N, P, C) -> (B, N, 4h, 4w)."""
        visual, text = inputs['visual'], inputs['text']
        t_hat, prior = self.prior(visual, text)
        if hasattr(self, 'alignment'):
            guidance = self.alignment(visual, t_hat)[0]
        else:
            guidance = self.pixel_guidance(visual)
        mid = inputs['mid']
        if mid.shape[-2:] != visual.shape[-2:]:
            mid = F.adaptive_avg_pool2d(mid, visual.shape[-2:])  # ConvNeXt: stride-16 stage to the stride-32 grid
        feats = self.mid_proj(mid)
        if hasattr(self, 'fusion'):
            fused, queries = self.fusion(feats, guidance, self.text_proj(t_hat))
        else:
            fused = self.plain_fusion(torch.cat([feats, guidance], dim=1))
            queries = self.queries.expand(visual.shape[0], -1, -1)
        # the classifier reads the plain class centres: T_hat's per-image scale (the prior) would change the
        # class directions from image to image; the prior reaches the logits through the shift below
        logits = self.decoder(fused, queries, inputs['guidance'], text.mean(dim=1).expand(len(visual), -1, -1))
        if self.prior_on_logits:
            shift = self.prior.lam * self.prior_logit_scale * standardize_over_classes(prior)
            logits = logits + shift[..., None, None]
        return logits

    def loss(self, inputs: dict, batch_data_samples: SampleList, train_cfg: ConfigType) -> dict:
        logits = self.forward(inputs)
        labels = torch.stack([s.gt_sem_seg.data for s in batch_data_samples]).squeeze(1)
        logits = resize_class_maps(logits, labels.shape[-2:], self.align_corners)
        return {self.loss_decode.loss_name: self.loss_decode(logits, labels, ignore_index=self.ignore_index)}

    def predict(self, inputs: dict, batch_img_metas: list[dict], test_cfg: ConfigType) -> torch.Tensor:
        """Logits resized to the (padded) network input, as MMSeg's segmentors expect."""
        logits = self.forward(inputs)
        meta = batch_img_metas[0]
        size = meta['img_shape'] if isinstance(meta['img_shape'], torch.Size) else meta.get('pad_shape',
                                                                                            meta['img_shape'])
        return resize_class_maps(logits, tuple(size[:2]), self.align_corners)
