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


def check_vocabulary(names: Sequence[str]) -> tuple[str, ...]:
    """Validate a vocabulary: non-empty, every name non-blank, no class listed twice.

    Classes are compared by their full (stripped, case-folded) name: A-847 has distinct classes that share
    a first synonym (``'bag'``), which the benchmark protocol prompts identically.
    """
    names = tuple(names)
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
    return names
