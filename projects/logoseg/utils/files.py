"""Files that appear complete or not at all: write beside the target, then rename over it."""
from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path


def temporary_beside(path: Path) -> Path:
    """A fresh hidden name in ``path``'s folder (same file system, so ``os.replace`` onto ``path`` is atomic).

    Open it with mode ``'xb'``: unlike ``tempfile``'s private 0600 files, it then gets the user's umask
    permissions, which the renamed file keeps.
    """
    return path.with_name(f'.{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp')


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a (possibly multi-GB) file's bytes, read in blocks."""
    with open(path, 'rb') as f:
        return hashlib.file_digest(f, 'sha256').hexdigest()


def write_json(data, path: str | Path) -> None:
    """``data`` as indented JSON at ``path`` (folders created), complete or not at all: a reader (DVC, MLflow,
    a person, a concurrent job) never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_beside(path)
    try:
        with open(tmp, 'x', encoding='utf-8') as f:
            json.dump(data, f, indent=2)
            f.write('\n')
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a process of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def append_csv(rows: list[dict], path: str | Path, columns: list[str]) -> None:
    """Append ``rows`` to the CSV file ``path`` (header written when the file is new; folders created).

    A file of measurements kept in git grows by one block of rows per run; an unknown column is an error, so
    the file keeps one schema.
    """
    import csv
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    with open(path, 'a', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator='\n')
        if new:
            writer.writeheader()
        writer.writerows(rows)
