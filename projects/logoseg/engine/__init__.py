from .hooks import EncoderLrHook, RngStateHook, TestMetricsHook, VocabularyHook
from .optim import FrozenAwareOptimWrapperConstructor
from .runner import LoGoSegRunner

__all__ = ['EncoderLrHook', 'FrozenAwareOptimWrapperConstructor', 'LoGoSegRunner', 'RngStateHook', 'TestMetricsHook',
           'VocabularyHook']
