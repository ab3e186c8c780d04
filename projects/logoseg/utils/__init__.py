from .errors import LoGoSegUserError
from .vocab import check_vocabulary, first_synonym, load_vocabulary

__all__ = ['LoGoSegUserError', 'check_vocabulary', 'first_synonym', 'load_vocabulary']
