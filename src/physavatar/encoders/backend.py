"""What every conditioning encoder shares: backend bookkeeping, the user cache folder, atomic writes.

Each feature carries the name of the backend that produced it (e.g. "whisper-tiny.en-ct2:layers=-1").
Features from different backends live in different spaces, so training must never mix them; it calls
`require_same_backend` on everything it batches together.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable


class BackendMismatchError(ValueError):
    """Features made by different encoder backends were put together."""


class ModelFolderError(FileNotFoundError):
    """A local model folder is missing or incomplete; the message names the folder and the missing file."""


def require_same_backend(items: Iterable, what: str = "features") -> str:
    """Return the one backend shared by `items` (objects with `.backend`, or strings); raise if they differ.

    Training calls this on every dataset / batch it builds, so a cache extracted with the offline default
    can never be silently mixed with one extracted with the paper's backbone.
    """
    backends: dict[str, int] = {}
    for item in items:
        name = item if isinstance(item, str) else getattr(item, "backend", None)
        if not name:
            raise BackendMismatchError(f"{what}: an item has no backend name ({type(item).__name__}); "
                                       "re-extract it with physavatar's encoders, which record one")
        backends[name] = backends.get(name, 0) + 1
    if not backends:
        raise ValueError(f"{what}: nothing to check (empty)")
    if len(backends) > 1:
        counts = ", ".join(f"{name!r} x{n}" for name, n in sorted(backends.items()))
        raise BackendMismatchError(
            f"{what} come from different encoder backends ({counts}); features of different backends live in "
            "different spaces: re-extract them all with one backend (see docs/encoders.md)")
    return next(iter(backends))


def cache_dir(*parts: str) -> Path:
    """The user cache folder ~/.cache/physavatar/<parts> (PHYSAVATAR_CACHE overrides the root); created."""
    root = os.environ.get("PHYSAVATAR_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "physavatar")
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` atomically (physavatar.io.atomic): readers never see a half-written file."""
    from physavatar.io.atomic import atomic_write

    with atomic_write(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npz(path: str | os.PathLike, **arrays) -> None:
    """np.savez into a temp file, then rename (np.savez appends '.npz' to names, so write via a handle)."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def hash_parts(*parts: bytes | str) -> str:
    """A stable hex digest of several byte strings (length-prefixed, so ("ab","c") != ("a","bc"))."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def require_model_folder(path: str | os.PathLike, files: Iterable[str], what: str) -> Path:
    """Check that a local model folder exists and holds `files`; raise a ModelFolderError naming what's missing."""
    folder = Path(path)
    if not folder.is_dir():
        raise ModelFolderError(f"{folder}: no such {what} folder; give the local folder that holds its "
                               "config.json and weights (model hubs are not reached: download it beforehand)")
    missing = [name for name in files if not (folder / name).exists()]
    if missing:
        raise ModelFolderError(f"{folder}: {what} folder lacks {', '.join(missing)}; give the complete "
                               "folder as saved by `save_pretrained`")
    return folder


def read_json(path: str | os.PathLike) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)
