"""Benchmark scoring: mIoU with hallucination figures, and the PAS-20b background merge."""
from .background import merge_background
from .metrics import HallucinationIoUMetric, hallucinated_classes

__all__ = ['HallucinationIoUMetric', 'hallucinated_classes', 'merge_background']
