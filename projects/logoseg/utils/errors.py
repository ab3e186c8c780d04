"""One-line errors for problems the user can fix (missing data, weights, bad vocabulary)."""
from __future__ import annotations

import sys


class LoGoSegUserError(RuntimeError):
    """A problem with the user's input or environment; the message names it and says how to fix it.

    Takes exactly one message argument: older mmengine registries re-raise build errors as
    ``type(err)(prefixed_message)``; 0.10 passes them through unchanged (``tests/models/test_options.py``).
    """


def _excepthook(previous):
    def hook(exc_type, exc, tb):
        if issubclass(exc_type, LoGoSegUserError):
            # what the program logged to a piped (block-buffered) stdout goes first: the line stays last
            # in `cmd 2>&1 | tee log` as on a terminal
            sys.stdout.flush()
            print(f'logoseg: error: {exc}', file=sys.stderr, flush=True)
            return
        previous(exc_type, exc, tb)
    hook.logoseg = True
    return hook


def install_excepthook() -> None:
    """Print :class:`LoGoSegUserError` as one line instead of a traceback (other errors are untouched)."""
    if not getattr(sys.excepthook, 'logoseg', False):
        sys.excepthook = _excepthook(sys.excepthook)
