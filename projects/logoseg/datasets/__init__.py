from .smoke import SmokeShapesDataset

__all__ = ['SmokeShapesDataset']
from .benchmarks import (ADE150Dataset, ADE847Dataset, COCOStuff171Dataset, DatasetFileError, DatasetNotFoundError,
                         PascalContext59Dataset, PascalContext459Dataset, PascalVOC20bDataset, PascalVOC20Dataset,
                         PreparedSegDataset)
from .declared import DeclaredDataset
from .transforms import LoadSegAnnotations

__all__ += ['ADE150Dataset', 'ADE847Dataset', 'COCOStuff171Dataset', 'DatasetFileError', 'DatasetNotFoundError',
            'DeclaredDataset', 'LoadSegAnnotations', 'PascalContext59Dataset', 'PascalContext459Dataset',
            'PascalVOC20bDataset', 'PascalVOC20Dataset', 'PreparedSegDataset']
