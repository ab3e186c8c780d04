"""Vocabularies: what a user passes to set_vocabulary, and which vocabularies are refused."""
import pytest

from logoseg.utils.errors import LoGoSegUserError
from logoseg.utils.vocab import VOCABULARIES, check_vocabulary, load_vocabulary, prompt_key


def refused(names) -> str:
    with pytest.raises(LoGoSegUserError) as err:
        check_vocabulary(names)
    assert '\n' not in str(err.value)
    return str(err.value)


def test_a_bare_string_is_a_shipped_vocabulary_never_its_letters():
    assert check_vocabulary('ade150') == load_vocabulary('ade150')
    message = refused('sky')
    assert message.startswith("vocabulary 'sky' is a single string: name a shipped vocabulary (ade150, ")
    assert "give a list of class names, e.g. ['sky']" in message


def test_a_list_or_tuple_is_returned_as_a_tuple():
    assert check_vocabulary(['sky', 'grass, lawn']) == ('sky', 'grass, lawn')
    assert check_vocabulary(name for name in ('a', 'b')) == ('a', 'b')


@pytest.mark.parametrize('names, expected', [
    ([], 'empty vocabulary'),
    (['sky', ' '], "class 1 has a blank name ' '"),
    (['sky', ', blue'], "class 1 has a blank name ', blue'"),
    (['sky', 3], 'class 1 has a blank name 3'),
    (['cat', 'dog', 'Cat '], "duplicate class name 'Cat' at positions 0 and 2"),
    (42, 'vocabulary 42 is not a list of class names'),
])
def test_malformed_vocabularies(names, expected):
    assert expected in refused(names)


@pytest.mark.parametrize('names, first, second, prompt', [
    (['sky', 'grass', 'sky, blue'], "0 'sky'", "2 'sky, blue'", 'sky'),
    (['Person, human', 'tree', 'person,  individual'], "0 'Person, human'", "2 'person,  individual'", 'person'),
    (['street  light', 'street light, lamp'], "0 'street  light'", "1 'street light, lamp'", 'street light'),
])
def test_classes_prompted_identically_are_refused_with_their_names(names, first, second, prompt):
    message = refused(names)
    assert message.startswith(f'classes {first} and {second} are both prompted as {prompt!r}')


def test_prompt_key_folds_what_clips_tokenizer_folds():
    assert prompt_key('  Sky   Blue , azure') == 'sky blue'


@pytest.mark.parametrize('name', VOCABULARIES)
def test_shipped_benchmark_vocabularies_are_accepted_exactly(name):
    names = load_vocabulary(name)
    assert check_vocabulary(name) == names and check_vocabulary(list(names)) == names


def test_a847_keeps_its_protocol_but_an_edited_copy_does_not():
    names = load_vocabulary('ade847')
    keys = [prompt_key(n) for n in names]
    assert len(set(keys)) < len(keys)  # distinct classes that share a first synonym ('bag'), prompted alike
    second = next(i for i, key in enumerate(keys) if key in keys[:i])  # the first class prompted like an earlier one
    first = keys.index(keys[second])
    assert refused(names[:-1]).startswith(f'classes {first} {names[first]!r} and {second} {names[second]!r} ')
