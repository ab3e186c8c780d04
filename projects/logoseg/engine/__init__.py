from .hooks import EncoderLrHook, TestMetricsHook, VocabularyHook
from .preemption import PreemptionHook
from .optim import FrozenAwareOptimWrapperConstructor
from .tracking import TrackedMLflowVisBackend, TrackedRun

__all__ = ['EncoderLrHook', 'FrozenAwareOptimWrapperConstructor', 'PreemptionHook', 'TestMetricsHook',
           'TrackedMLflowVisBackend', 'TrackedRun', 'VocabularyHook']
