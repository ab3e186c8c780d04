from .hooks import VocabularyHook
from .optim import FrozenAwareOptimWrapperConstructor

__all__ = ['FrozenAwareOptimWrapperConstructor', 'VocabularyHook']
