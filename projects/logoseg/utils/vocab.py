"""Benchmark vocabularies shipped with the package, and prompt-side name handling."""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Sequence

from .errors import LoGoSegUserError

VOCABULARIES = ('ade150', 'ade847', 'coco', 'pc59', 'pc459', 'voc20', 'voc20b')


@lru_cache(maxsize=None)
def load_vocabulary(name: str) -> tuple[str, ...]:
    """Class names of a shipped benchmark vocabulary, in trainId order (e.g. ``'ade150'``)."""
    if name not in VOCABULARIES:
        raise LoGoSegUserError(f'unknown vocabulary {name!r}; choose one of {", ".join(VOCABULARIES)}')
    text = resources.files('logoseg').joinpath('vocab', f'{name}.json').read_text(encoding='utf-8')
    return tuple(json.loads(text))


def first_synonym(name: str) -> str:
    """The prompt name of a class: the first entry of a comma-separated synonym list, stripped."""
    return name.split(',')[0].strip()


def prompt_key(name: str) -> str:
    """What the text encoder sees of a class name: its first synonym, case- and whitespace-folded as CLIP's
    tokenizer folds them (``'Sky  Blue, azure'`` -> ``'sky blue'``)."""
    return ' '.join(first_synonym(name).lower().split())


@lru_cache(maxsize=None)
def _shipped() -> frozenset[tuple[str, ...]]:
    return frozenset(load_vocabulary(name) for name in VOCABULARIES)


def check_vocabulary(names: str | Sequence[str]) -> tuple[str, ...]:
    """Validate a vocabulary and return it as a tuple of class names.

    Args:
        names: class names (comma-separated synonyms allowed, only the first is prompted), or the name of a
            shipped vocabulary (one of :data:`VOCABULARIES`).

    Raises:
        LoGoSegUserError: a bare string that is not a shipped vocabulary; an empty vocabulary; a blank or
            non-string name; a class listed twice (stripped, case-folded full name); two classes prompted
            identically (same first synonym), which would get identical logits. The shipped benchmark
            vocabularies are accepted as they are: A-847 has distinct classes sharing a first synonym
            (``'bag'``), which the benchmark protocol prompts identically.
    """
    if isinstance(names, str):
        if names in VOCABULARIES:
            return load_vocabulary(names)
        raise LoGoSegUserError(f'vocabulary {names!r} is a single string: name a shipped vocabulary '
                               f'({", ".join(VOCABULARIES)}) or give a list of class names, e.g. [{names!r}]')
    try:
        names = tuple(names)
    except TypeError:
        raise LoGoSegUserError(f'vocabulary {names!r} is not a list of class names') from None
    if not names:
        raise LoGoSegUserError('empty vocabulary: give at least one class name')
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if not isinstance(name, str) or not first_synonym(name):
            raise LoGoSegUserError(f'class {index} has a blank name {name!r}; every class needs a name')
        key = name.strip().lower()
        if key in seen:
            raise LoGoSegUserError(
                f'duplicate class name {name.strip()!r} at positions {seen[key]} and {index}; '
                'list each class once')
        seen[key] = index
    prompted: dict[str, int] = {}
    for index, name in enumerate(names):
        first = prompted.setdefault(prompt_key(name), index)
        if first != index and names not in _shipped():
            raise LoGoSegUserError(
                f'classes {first} {names[first].strip()!r} and {index} {name.strip()!r} are both prompted as '
                f'{prompt_key(name)!r} (only the first comma-separated synonym is prompted), so they would get '
                'identical scores; give one of them a different first name or merge them')
    return names
