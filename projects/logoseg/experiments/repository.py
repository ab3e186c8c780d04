"""The repository a grid command works on (params, rows, outputs), where its MLflow store lives, and what of its
checkout a run records: found from the working directory, so a queued DVC experiment (its own copy under
``.dvc/tmp/exps``) or a second clone never reads or writes another checkout's files."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Optional


def repo_root() -> Path:
    """The repository being worked on, where params, rows and outputs are read and written.

    The DVC repository holding the current directory (DVC runs every stage there: for ``dvc exp run --queue``
    / ``--temp`` that is the experiment's own copy under ``.dvc/tmp/exps``, with its own params), else
    ``DVC_ROOT``, else the checkout this package was installed from. ``DVC_ROOT`` is not first: for a queued
    experiment DVC sets it to the parent repository (for trackers that log there), and an install location
    is not first either: an editable install of one clone must not make another clone, or a queued
    experiment, read and write the first one's files.
    """
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / '.dvc').is_dir() and (folder / 'dvc.yaml').is_file():
            return folder
    if os.environ.get('DVC_ROOT'):
        return Path(os.environ['DVC_ROOT']).resolve()
    return Path(__file__).resolve().parents[3]


def store_root(root: Optional[Path] = None) -> Path:
    """Where the default MLflow store lives: the repository, or for a DVC experiment copy
    (``<repo>/.dvc/tmp/exps/<tmp>``, deleted after the experiment) the repository it was copied from."""
    root = root or repo_root()
    parts = root.parts
    for index in range(len(parts) - 2):
        if parts[index:index + 3] == ('.dvc', 'tmp', 'exps'):
            return Path(*parts[:index])
    return root


def relative_to_repo(path: str | Path, root: Optional[Path] = None) -> str:
    """``path`` relative to the repository when it lies inside it (records survive a moved checkout)."""
    root = root or repo_root()
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


# Files DVC rewrites itself (``dvc repro`` updates the lock, ``dvc exp run -S`` the params files) and the
# params files, whose values every run logs as params: a change there says nothing about the source.
NOT_SOURCE = ('dvc.lock', '*.dvc', '.dvc', 'params.yaml', 'experiments/rows.yaml', 'results')


def git_tags(root: Optional[Path] = None) -> dict:
    """``git_commit`` and ``git_dirty`` of the checkout: dirty only when tracked source differs from the
    commit (the files of :data:`NOT_SOURCE` excluded); empty outside git."""
    root = root or repo_root()
    excluded = [f':(exclude,glob){name}' if '*' in name else f':(exclude){name}' for name in NOT_SOURCE]
    try:
        commit = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=root, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no', '--', '.', *excluded],
                               cwd=root, capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    return dict(git_commit=commit, git_dirty=str(bool(dirty)).lower())
