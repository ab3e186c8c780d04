from .hooks import EncoderLrHook, VocabularyHook
from .optim import FrozenAwareOptimWrapperConstructor

__all__ = ['EncoderLrHook', 'FrozenAwareOptimWrapperConstructor', 'VocabularyHook']
