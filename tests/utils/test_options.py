"""The option-checking helpers behind every model-config error."""
import pytest

from logoseg.utils.errors import LoGoSegUserError
from logoseg.utils.options import check_int, check_keys, check_size, parameter_names


def test_unknown_key_without_a_close_match_lists_what_is_allowed():
    with pytest.raises(LoGoSegUserError) as err:
        check_keys(dict(mode='whole', zzz=1), ('mode', 'stride'), 'model.test_cfg')
    assert str(err.value) == 'unknown option model.test_cfg.zzz=1; model.test_cfg takes mode, stride'
    with pytest.raises(LoGoSegUserError, match='model.train_cfg takes no options'):
        check_keys(dict(x=1), (), 'model.train_cfg')


def test_a_callable_taking_kwargs_is_not_key_checked():
    def open_ended(a, *, b=1, **rest):
        pass

    def closed(a, *args, b=1):
        pass

    assert parameter_names(open_ended) is None
    assert parameter_names(closed) == {'a', 'b'}


def test_sizes_and_integers():
    assert check_size('x', 5) == (5, 5) and check_size('x', [3, 4]) == (3, 4)
    for bad in ((3,), (3, 4, 5), (3.0, 4), (True, 4), 'ab', None, -2):
        with pytest.raises(LoGoSegUserError, match=r'use a pair \(h, w\) of positive integers'):
            check_size('x', bad)
    assert check_int('n', 3, 1, 3) == 3
    with pytest.raises(LoGoSegUserError, match='n=True: use an integer >= 1'):
        check_int('n', True)
