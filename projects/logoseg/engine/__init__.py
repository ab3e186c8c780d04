from .hooks import EncoderLrHook, RngStateHook, TestMetricsHook, VocabularyHook
from .optim import FrozenAwareOptimWrapperConstructor

__all__ = ['EncoderLrHook', 'FrozenAwareOptimWrapperConstructor', 'RngStateHook', 'TestMetricsHook',
           'VocabularyHook']
