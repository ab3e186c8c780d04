"""Inference on the user's own images: :class:`LoGoSegPredictor` (Python) behind ``logoseg segment`` (CLI)."""
from .images import IMAGE_EXTENSIONS, read_image
from .predictor import LoGoSegPredictor, Segmentation
from .visualize import draw_overlay

__all__ = ['IMAGE_EXTENSIONS', 'LoGoSegPredictor', 'Segmentation', 'draw_overlay', 'read_image']
