from .hooks import EncoderLrHook, TestMetricsHook, VocabularyHook
from .optim import FrozenAwareOptimWrapperConstructor
from .tracking import TrackedMLflowVisBackend, TrackedRun

__all__ = ['EncoderLrHook', 'FrozenAwareOptimWrapperConstructor', 'TestMetricsHook', 'TrackedMLflowVisBackend',
           'TrackedRun', 'VocabularyHook']
