"""Config options checked when a model is built: one line naming the option, its value and what is allowed.

``where`` is the option's dotted path in the config (``'model.decode_head'``), so a message reads as the key a
user would pass to ``--cfg-options``.
"""
from __future__ import annotations

import difflib
import inspect
import math
from typing import Any, Callable, Iterable, Mapping

from .errors import LoGoSegUserError


def check_keys(options: Mapping, allowed: Iterable[str], where: str) -> None:
    """Refuse any key of ``options`` outside ``allowed``, suggesting the closest allowed key."""
    allowed = sorted(allowed)
    for key in options:
        if key in allowed:
            continue
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hint = f' (did you mean {close[0]}?)' if close else ''
        raise LoGoSegUserError(f'unknown option {where}.{key}={options[key]!r}{hint}; '
                               f'{where} takes {", ".join(allowed) or "no options"}')


def parameter_names(target: Callable) -> set[str] | None:
    """Keyword arguments ``target`` (a class or function) accepts; None when it takes ``**kwargs``."""
    params = inspect.signature(target).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def check_registered(cfg: Mapping, registry, where: str, set_here: Iterable[str] = ()) -> None:
    """Check a ``dict(type=..., **kwargs)`` config against the signature of the class it names.

    ``set_here`` are arguments the caller fills in itself: the user may not set them.
    """
    if not isinstance(cfg, Mapping) or 'type' not in cfg:
        raise LoGoSegUserError(f'{where} must be a dict with a type, got {cfg!r}')
    target = cfg['type'] if callable(cfg['type']) else registry.get(cfg['type'])
    if target is None:
        raise LoGoSegUserError(f'{where}.type={cfg["type"]!r} is not a registered {registry.name}; '
                               "check the name, and that custom_imports=dict(imports=['logoseg']) is set")
    set_here = set(set_here)
    for key in set_here & set(cfg):
        raise LoGoSegUserError(f'{where}.{key}={cfg[key]!r}: LoGoSeg sets {key} itself; remove it from the config')
    names = parameter_names(target)
    if names is not None:
        check_keys({k: v for k, v in cfg.items() if k not in ('type', '_scope_')}, names - set_here, where)


def check_int(where: str, value: Any, minimum: int = 1, maximum: int | None = None, why: str = '') -> int:
    """An integer in [minimum, maximum] (bools refused)."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    ok = ok and (maximum is None or value <= maximum)
    if not ok:
        bounds = f'from {minimum} to {maximum}' if maximum is not None else f'>= {minimum}'
        raise LoGoSegUserError(f'{where}={value!r}: use an integer {bounds}{why}')
    return value


def check_positive(where: str, value: Any) -> float:
    """A finite number > 0 (bools refused)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if not ok:
        raise LoGoSegUserError(f'{where}={value!r}: use a finite number > 0')
    return float(value)


def check_bool(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise LoGoSegUserError(f'{where}={value!r}: use True or False')
    return value


def check_choice(where: str, value: Any, choices: Iterable) -> Any:
    choices = tuple(choices)
    if value not in choices:
        raise LoGoSegUserError(f'{where}={value!r}: use one of {", ".join(map(repr, choices))}')
    return value


def check_size(where: str, value: Any) -> tuple[int, int]:
    """An (h, w) pair of positive integers; a single integer n means (n, n)."""
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    try:
        h, w = pair
    except (TypeError, ValueError):
        h = w = None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (h, w)):
        raise LoGoSegUserError(f'{where}={value!r}: use a pair (h, w) of positive integers, e.g. (384, 384)')
    return h, w
