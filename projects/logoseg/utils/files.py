"""Files that appear complete or not at all: write beside the target, then rename over it."""
from __future__ import annotations

import os
import uuid
from pathlib import Path


def temporary_beside(path: Path) -> Path:
    """A fresh hidden name in ``path``'s folder (same file system, so ``os.replace`` onto ``path`` is atomic).

    Open it with mode ``'xb'``: unlike ``tempfile``'s private 0600 files, it then gets the user's umask
    permissions, which the renamed file keeps.
    """
    return path.with_name(f'.{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp')


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a process of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
