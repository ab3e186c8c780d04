"""CLIP from open_clip as LoGoSeg's encoders: dense image features (sec 2.1) and frozen prompt embeddings.

The image encoder returns, for an image batch (B, 3, H0, W0):
  * ``visual``  V (B, C, h, w): patch features in the joint image-text space (eq 1, 3, 5),
  * ``mid``     F_mid (B, C_mid, h', w'): a middle-layer feature map (eq 8),
  * ``guidance`` [S_1, S_2]: two intermediate activations for the decoder (eq 11), S_1 for the coarser stage.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Sequence

import open_clip
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..utils.errors import LoGoSegUserError
from ..utils.text_cache import TextEmbeddingCache, weights_fingerprint
from ..utils.vocab import check_vocabulary, first_synonym

open_clip.add_model_config(Path(__file__).parent / 'model_configs')  # the tiny smoke/test architectures

PAPER_TEMPLATES = ('A photo of a {} in the scene',)
_HUB_HOST = 'huggingface.co'


def _looks_like_path(pretrained: str) -> bool:
    return os.sep in pretrained or pretrained.endswith(('.bin', '.pt', '.pth', '.safetensors'))


def _cached_weights(pretrained_cfg: dict, cache_dir: str | None) -> str | None:
    """The local file of a pretrained tag if it is already cached, without touching the network."""
    hub = pretrained_cfg.get('hf_hub', '')
    if hub:
        from huggingface_hub import try_to_load_from_cache
        repo_id, filename = os.path.split(hub)
        names = [filename] if filename else ['open_clip_model.safetensors', 'open_clip_pytorch_model.bin']
        for name in names:
            path = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir)
            if isinstance(path, str):
                return path
        return None
    url = pretrained_cfg.get('url', '')
    if url:
        path = Path(cache_dir or '~/.cache/clip').expanduser() / os.path.basename(url)
        return str(path) if path.is_file() else None
    return None


def _host_reachable(host: str, timeout: float = 3.0) -> bool:
    """Probe in a thread: DNS lookups ignore socket timeouts and can hang on closed networks."""
    import socket
    result = []

    def probe():
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def resolve_pretrained(model_name: str, pretrained: str | None, cache_dir: str | None = None) -> str | None:
    """Check that ``pretrained`` (an open_clip tag or a local file) can be loaded before building the model.

    Returns what to pass to ``open_clip.create_model``. Fails in one line, instead of a long network retry,
    when a tag is neither cached nor downloadable.
    """
    if not pretrained:
        return None
    if _looks_like_path(pretrained):
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise LoGoSegUserError(f'CLIP checkpoint not found at {path}; set model.clip.pretrained to an '
                                   f'existing open_clip checkpoint file or to a tag of {model_name}')
        return str(path)
    tags = open_clip.list_pretrained_tags_by_model(model_name)
    if pretrained not in tags:
        raise LoGoSegUserError(f'unknown pretrained tag {pretrained!r} for {model_name}; valid tags: '
                               f'{", ".join(tags) or "none"} (or a local checkpoint path)')
    cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
    if cfg.get('quick_gelu') and not open_clip.get_model_config(model_name).get('quick_gelu'):
        # open_clip only warns; GELU in place of QuickGELU silently corrupts every (frozen) text embedding
        raise LoGoSegUserError(f'the {pretrained} weights of {model_name} were trained with QuickGELU; '
                               f'use model_name={model_name}-quickgelu')
    if _cached_weights(cfg, cache_dir) is not None:
        return pretrained
    offline = os.environ.get('HF_HUB_OFFLINE', '0') not in ('', '0') or not _host_reachable(_HUB_HOST)
    if offline:
        raise LoGoSegUserError(
            f'CLIP weights {model_name}/{pretrained} are not cached and {_HUB_HOST} is unreachable; '
            f'download them once on a connected machine (python -c "import logoseg, open_clip; '
            f"open_clip.create_model('{model_name}', pretrained='{pretrained}')\") and copy the Hugging Face "
            'cache, or set model.clip.pretrained=/path/to/open_clip_model.safetensors')
    return pretrained


def create_clip(model_name: str, pretrained: str | None = None, cache_dir: str | None = None) -> nn.Module:
    """Build an open_clip CLIP model; ``pretrained`` is a tag, a local file, or None for random init."""
    if model_name not in open_clip.list_models():
        raise LoGoSegUserError(f'unknown CLIP model {model_name!r}; open_clip knows e.g. ViT-B-16, ViT-L-14, '
                               'convnext_base_w_320, convnext_large_d_320')
    weights = resolve_pretrained(model_name, pretrained, cache_dir)
    return open_clip.create_model(model_name, pretrained=weights, cache_dir=cache_dir)


class CLIPImageEncoder(nn.Module):
    """What the head needs to know of a dense image encoder; ``forward`` returns visual/mid/guidance."""

    embed_dim: int  # C of V
    mid_channels: int  # channels of F_mid
    guidance_channels: tuple[int, int]  # channels of S_1, S_2
    patch_stride: int  # input pixels per cell of V


class ViTImageEncoder(CLIPImageEncoder):
    """Dense features of an open_clip VisionTransformer at any input size (position embeddings resized).

    Args:
        visual: ``open_clip`` ``VisionTransformer`` (``model.visual``).
        mid_layer: block whose output is F_mid (0-based).
        guidance_layers: blocks whose outputs are (S_1, S_2).
    """

    def __init__(self, visual: nn.Module, mid_layer: int, guidance_layers: Sequence[int]):
        super().__init__()
        depth = len(visual.transformer.resblocks)
        for layer in (mid_layer, *guidance_layers):
            if not 0 <= layer < depth:
                raise LoGoSegUserError(f'CLIP layer {layer} out of range: this ViT has {depth} blocks (0-based)')
        self.visual = visual
        self.mid_layer = mid_layer
        self.guidance_layers = tuple(guidance_layers)
        width = visual.conv1.out_channels
        self.embed_dim = visual.proj.shape[1]
        self.mid_channels = width
        self.guidance_channels = (width, width)
        self.patch_stride = visual.conv1.stride[0]

    def position_embedding(self, height: int, width: int) -> torch.Tensor:
        """(1 + height*width, width) position embeddings, bicubically resized from the pretraining grid."""
        pos = self.visual.positional_embedding
        cls_pos, grid_pos = pos[:1], pos[1:]
        size = int(grid_pos.shape[0] ** 0.5)
        if (height, width) != (size, size):
            grid_pos = grid_pos.reshape(1, size, size, -1).permute(0, 3, 1, 2)
            grid_pos = F.interpolate(grid_pos, size=(height, width), mode='bicubic', align_corners=False)
            grid_pos = grid_pos.permute(0, 2, 3, 1).reshape(height * width, -1)
        return torch.cat([cls_pos, grid_pos], dim=0)

    def forward(self, images: torch.Tensor) -> dict:
        visual = self.visual
        x = visual.conv1(images)
        batch, _, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)
        cls = visual.class_embedding.to(x.dtype).expand(batch, 1, -1)
        x = torch.cat([cls, x], dim=1) + self.position_embedding(h, w).to(x.dtype)
        x = visual.ln_pre(x)

        def grid(tokens: torch.Tensor) -> torch.Tensor:
            return tokens[:, 1:].transpose(1, 2).reshape(batch, -1, h, w)

        batch_first = getattr(visual.transformer, 'batch_first', True)
        taken = {}
        for index, block in enumerate(visual.transformer.resblocks):
            x = block(x) if batch_first else block(x.transpose(0, 1)).transpose(0, 1)
            if index == self.mid_layer or index in self.guidance_layers:
                taken[index] = grid(x)
        dense = visual.ln_post(x[:, 1:]) @ visual.proj
        return dict(
            visual=dense.transpose(1, 2).reshape(batch, -1, h, w),
            mid=taken[self.mid_layer],
            guidance=[taken[i] for i in self.guidance_layers],
        )


class ConvNeXtImageEncoder(CLIPImageEncoder):
    """Dense features of an open_clip timm ConvNeXt tower: the pooled head applied at every position.

    Args:
        visual: ``open_clip`` ``TimmModel`` wrapping a timm ConvNeXt.
        mid_layer: stage whose output is F_mid (0-based; stage s has stride 4 * 2**s).
        guidance_layers: stages whose outputs are (S_1, S_2).
    """

    def __init__(self, visual: nn.Module, mid_layer: int, guidance_layers: Sequence[int]):
        super().__init__()
        stages = visual.trunk.stages
        for layer in (mid_layer, *guidance_layers):
            if not 0 <= layer < len(stages):
                raise LoGoSegUserError(f'ConvNeXt stage {layer} out of range: {len(stages)} stages (0-based)')
        self.visual = visual
        self.mid_layer = mid_layer
        self.guidance_layers = tuple(guidance_layers)
        dims = [info['num_chs'] for info in visual.trunk.feature_info]
        proj = visual.head.proj if hasattr(visual.head, 'proj') else visual.head.mlp.fc2
        self.embed_dim = proj.out_features
        self.mid_channels = dims[mid_layer]
        self.guidance_channels = tuple(dims[i] for i in self.guidance_layers)
        self.patch_stride = 4 * 2 ** (len(stages) - 1)

    def forward(self, images: torch.Tensor) -> dict:
        trunk = self.visual.trunk
        x = trunk.stem(images)
        stage_outputs = []
        for stage in trunk.stages:
            x = stage(x)
            stage_outputs.append(x)
        x = trunk.head.norm(trunk.norm_pre(x))
        dense = self.visual.head(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return dict(
            visual=dense,
            mid=stage_outputs[self.mid_layer],
            guidance=[stage_outputs[i] for i in self.guidance_layers],
        )


def build_image_encoder(visual: nn.Module, mid_layer: int, guidance_layers: Sequence[int]) -> CLIPImageEncoder:
    """Pick the dense wrapper for an open_clip image tower."""
    if len(guidance_layers) != 2:
        raise LoGoSegUserError(f'guidance_layers needs two entries (S_1, S_2), got {list(guidance_layers)}')
    if hasattr(visual, 'transformer') and hasattr(visual, 'conv1'):
        return ViTImageEncoder(visual, mid_layer, guidance_layers)
    if hasattr(visual, 'trunk') and hasattr(visual.trunk, 'stages'):
        return ConvNeXtImageEncoder(visual, mid_layer, guidance_layers)
    raise LoGoSegUserError(f'unsupported CLIP image tower {type(visual).__name__}; '
                           'LoGoSeg supports open_clip ViT and timm ConvNeXt towers')


class CLIPTextEncoder(nn.Module):
    """Frozen CLIP text tower: T (N, P, C) unit-norm prompt embeddings, computed once per vocabulary.

    Args:
        clip_model: open_clip CLIP model (its image tower is not used here).
        tokenizer: open_clip tokenizer of that model.
        templates: the P prompt templates, each with one ``{}`` for the class name.
        model_name: the open_clip architecture name; given, embeddings are also cached on disk
            (:class:`~logoseg.utils.text_cache.TextEmbeddingCache`), keyed by it, the weights, the
            templates and the vocabulary. None keeps them in memory only.
        cache_dir: the disk cache's folder; None is ``$LOGOSEG_CACHE_DIR`` or ``~/.cache/logoseg``.
    """

    def __init__(self, clip_model: nn.Module, tokenizer, templates: Sequence[str] = PAPER_TEMPLATES,
                 batch_size: int = 256, model_name: str | None = None, cache_dir: str | Path | None = None):
        super().__init__()
        templates = tuple(templates)
        if not templates or any(t.count('{}') != 1 for t in templates):
            raise LoGoSegUserError(f'prompt templates must each contain exactly one "{{}}", got {templates}')
        self.clip = clip_model
        self.tokenizer = tokenizer
        self.templates = templates
        self.batch_size = batch_size
        self.requires_grad_(False)
        self._cache: dict[tuple, torch.Tensor] = {}
        self.model_name = model_name
        self.disk_cache = TextEmbeddingCache(cache_dir)
        super().train(False)

    def train(self, mode: bool = True):
        """The text tower stays in eval mode: it is frozen (paper sec 3.2)."""
        return super().train(False)

    def _load_from_state_dict(self, *args, **kwargs):
        self._cache.clear()  # new weights invalidate cached embeddings
        super()._load_from_state_dict(*args, **kwargs)

    def prompts(self, class_names: Sequence[str]) -> list[str]:
        """N*P prompt strings, class-major; only the first synonym of each name is used."""
        return [t.format(first_synonym(name)) for name in class_names for t in self.templates]

    @torch.no_grad()
    def forward(self, class_names: Sequence[str]) -> torch.Tensor:
        device = next(self.clip.parameters()).device
        key = (tuple(class_names), device)
        if key not in self._cache:  # validated and encoded once per vocabulary, not on every forward
            names = check_vocabulary(class_names)
            prompts = self.prompts(names)
            identity = None
            if self.model_name is not None:
                identity = self.disk_cache.identity(self.model_name, weights_fingerprint(self.clip),
                                                    self.templates, prompts)
                stored = self.disk_cache.load(identity, (len(names), len(self.templates)))
                if stored is not None:
                    self._cache[key] = stored.to(device)
                    return self._cache[key]
            tokens = self.tokenizer(prompts).to(device)
            # full precision whatever the caller's autocast: the cache outlives a mixed-precision step
            with torch.autocast(device.type, enabled=False):
                chunks = [self.clip.encode_text(tokens[i:i + self.batch_size], normalize=True).float()
                          for i in range(0, len(tokens), self.batch_size)]
            self._cache[key] = torch.cat(chunks).reshape(len(names), len(self.templates), -1)
            if identity is not None:
                self.disk_cache.save(identity, self._cache[key])
        return self._cache[key]
