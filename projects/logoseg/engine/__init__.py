from .hooks import EncoderLrHook, RngStateHook, TestMetricsHook, VocabularyHook
from .optim import FrozenAwareOptimWrapperConstructor
from .tracking import TrackedMLflowVisBackend, TrackedRun

__all__ = ['EncoderLrHook', 'FrozenAwareOptimWrapperConstructor', 'RngStateHook', 'TestMetricsHook',
           'TrackedMLflowVisBackend', 'TrackedRun', 'VocabularyHook']
