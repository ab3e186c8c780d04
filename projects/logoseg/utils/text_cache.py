"""On-disk cache of CLIP prompt embeddings: a second run with the same vocabulary skips the text tower.

An entry is one ``torch.save`` file named by the SHA-256 of its identity: the open_clip architecture, a
fingerprint of the text tower's weights, the templates and the exact prompt strings (so the class names and
their order). The file repeats that identity and a checksum of the embeddings; an entry that does not load,
names another identity or fails its checksum is reported and recomputed, never used. Entries are written
to a temporary name and renamed, so a reader never sees half a file.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
from mmengine.logging import print_log

from .files import temporary_beside

CACHE_ENV = 'LOGOSEG_CACHE_DIR'
FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    """``$LOGOSEG_CACHE_DIR``, else ``$XDG_CACHE_HOME/logoseg``, else ``~/.cache/logoseg``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(base).expanduser() / 'logoseg'


def weights_fingerprint(module: nn.Module) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of a module's state dict."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        tensor = tensor.detach().to('cpu').contiguous().reshape(-1)
        digest.update(f'{name}:{tensor.dtype}:{tuple(tensor.shape)};'.encode())
        digest.update(tensor.view(torch.uint8).numpy())
    return digest.hexdigest()


def _tensor_checksum(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.contiguous().reshape(-1).view(torch.uint8).numpy()).hexdigest()


class TextEmbeddingCache:
    """Prompt embeddings (N, P, C) float32 stored under ``root/text_embeddings/<key>.pt``.

    Args:
        root: the cache folder; None means :func:`default_cache_dir` at the time of each access.
    """

    def __init__(self, root: str | os.PathLike | None = None):
        self._root = root

    @property
    def folder(self) -> Path:
        root = Path(self._root).expanduser() if self._root is not None else default_cache_dir()
        return root / 'text_embeddings'

    @staticmethod
    def identity(model_name: str, weights: str, templates: Sequence[str], prompts: Sequence[str]) -> dict:
        return dict(format=FORMAT_VERSION, model=model_name, weights=weights, templates=list(templates),
                    prompts=list(prompts))

    def path(self, identity: dict) -> Path:
        key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        return self.folder / f'{key}.pt'

    def load(self, identity: dict, leading_shape: Sequence[int]) -> torch.Tensor | None:
        """The stored (N, P, C) embeddings of ``identity``, (N, P) = ``leading_shape``, or None (missing,
        corrupt or stale)."""
        path = self.path(identity)
        if not path.is_file():
            return None
        try:
            entry = torch.load(path, map_location='cpu', weights_only=True)
        except Exception as err:  # a truncated or overwritten file fails in pickle, zip or storage code
            return self._reject(path, f'unreadable ({type(err).__name__})')
        if not isinstance(entry, dict) or entry.get('identity') != identity:
            return self._reject(path, 'written for another model, weights or vocabulary')
        embeddings = entry.get('embeddings')
        if (not isinstance(embeddings, torch.Tensor) or embeddings.dtype != torch.float32
                or embeddings.ndim != 3 or tuple(embeddings.shape[:2]) != tuple(leading_shape)):
            return self._reject(path, f'holds no float32 tensor of shape ({", ".join(map(str, leading_shape))}, C)')
        if entry.get('sha256') != _tensor_checksum(embeddings) or not torch.isfinite(embeddings).all():
            return self._reject(path, 'fails its checksum')
        return embeddings

    def save(self, identity: dict, embeddings: torch.Tensor) -> None:
        """Store atomically; a cache folder that cannot be written is reported once per call, not raised."""
        path = self.path(identity)
        embeddings = embeddings.detach().to('cpu', torch.float32).contiguous()
        entry = dict(identity=identity, embeddings=embeddings, sha256=_tensor_checksum(embeddings))
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = temporary_beside(path)
            with open(tmp, 'xb') as handle:
                torch.save(entry, handle)
            os.replace(tmp, path)
            tmp = None
        except OSError as err:
            print_log(f'text-embedding cache not written to {path.parent} ({err}); set {CACHE_ENV} to a '
                      'writable folder to cache embeddings', logger='current', level=logging.WARNING)
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)

    @staticmethod
    def _reject(path: Path, why: str) -> None:
        print_log(f'ignoring cached text embeddings {path}: {why}; recomputing', logger='current',
                  level=logging.WARNING)
        return None
