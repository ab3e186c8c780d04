from .hooks import EncoderLrHook, RngStateHook, TestMetricsHook, VocabularyHook
from .preemption import PreemptionHook
from .optim import FrozenAwareOptimWrapperConstructor
from .tracking import TrackedMLflowVisBackend, TrackedRun

__all__ = ['EncoderLrHook', 'FrozenAwareOptimWrapperConstructor', 'PreemptionHook', 'RngStateHook',
           'TestMetricsHook', 'TrackedMLflowVisBackend', 'TrackedRun', 'VocabularyHook']
