from .hooks import TestMetricsHook, VocabularyHook
from .optim import FrozenAwareOptimWrapperConstructor
from .tracking import TrackedMLflowVisBackend, TrackedRun

__all__ = ['FrozenAwareOptimWrapperConstructor', 'TestMetricsHook', 'TrackedMLflowVisBackend', 'TrackedRun',
           'VocabularyHook']
