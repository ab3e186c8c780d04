"""Inference on the user's own images: :class:`LoGoSegPredictor` (Python) behind ``logoseg segment`` (CLI); and
:func:`build_model`, the one way to build a LoGoSeg model from a config."""
from .images import IMAGE_EXTENSIONS, read_image
from .model import build_model
from .predictor import LoGoSegPredictor, Segmentation
from .visualize import draw_overlay

__all__ = ['IMAGE_EXTENSIONS', 'LoGoSegPredictor', 'Segmentation', 'build_model', 'draw_overlay', 'read_image']
