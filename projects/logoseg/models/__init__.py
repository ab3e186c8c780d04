from .clip_encoders import CLIPTextEncoder, ConvNeXtImageEncoder, ViTImageEncoder, create_clip
from .decoder import GuidedDecoder
from .head import LoGoSegHead
from .losses import MaskedBCELoss
from .segmentor import LoGoSeg

__all__ = ['CLIPTextEncoder', 'ConvNeXtImageEncoder', 'GuidedDecoder', 'LoGoSeg', 'LoGoSegHead',
           'MaskedBCELoss', 'ViTImageEncoder', 'create_clip']
