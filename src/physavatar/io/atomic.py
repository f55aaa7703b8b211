"""Atomic writes: a reader never sees a half-written file, and a failed write never touches the old one.

Everything is written to a temporary name in the destination folder (same filesystem, so the final
`os.replace` is atomic), and renamed over the destination only once the write has finished. On any error
the temporary is removed and whatever was at the destination before is left exactly as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterator

from physavatar.io.errors import OutputExistsError, media_error


def umask_mode(mode: int = 0o666) -> int:
    """The permissions open() would give a new file: temp files from mkstemp are 0600, and renaming one into
    place must not leave the user's output unreadable to others."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def _prepare_parent(path: Path) -> Path:
    if path.exists() and path.is_dir():
        raise media_error(path, "is an existing folder", "give a file path, not a folder", OutputExistsError)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.parent


def _fsync_dir(folder: Path) -> None:
    # Make the rename itself durable; not every platform or filesystem allows fsync on a folder.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _unlink_quietly(path: str | Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", **open_kwargs) -> Iterator[IO]:
    """Yield a file object on a temp file next to `path`; rename it onto `path` when the block succeeds.

    >>> with atomic_write("out.json", "w") as f:
    ...     f.write("{}")
    """
    if mode[:1] not in ("w", "x"):
        raise ValueError(f"atomic_write({os.fspath(path)!r}): mode {mode!r} must be a write mode ('w', 'wb')")
    path = Path(path)
    parent = _prepare_parent(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    os.chmod(tmp, umask_mode())
    try:
        with os.fdopen(fd, mode.replace("x", "w"), **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if "x" in mode and path.exists():
            raise media_error(path, "already exists", "remove it or choose another name", OutputExistsError)
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_dir(parent)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path next to `path` with the same suffix (so encoders infer the format from it).

    The caller writes (or has a library write) to the yielded path; on success it is renamed onto `path`.
    Writing nothing there is an error, so a silent no-op writer is caught rather than leaving no output.
    """
    path = Path(path)
    parent = _prepare_parent(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.tmp-", suffix=path.suffix, dir=parent)
    os.close(fd)
    # Leave the name free: some writers (FFmpeg muxers, np.save) refuse or misbehave on an existing file.
    os.unlink(tmp)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if not tmp_path.exists():
            raise media_error(path, "the writer produced no file", "this is a bug in the code that wrote it: "
                              f"it should have written to {tmp_path}")
        if tmp_path.is_file():
            os.chmod(tmp_path, umask_mode())
        os.replace(tmp_path, path)
    except BaseException:
        if tmp_path.is_dir():
            shutil.rmtree(tmp_path, ignore_errors=True)
        else:
            _unlink_quietly(tmp_path)
        raise
    _fsync_dir(parent)


def _is_nonempty_dir(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def _check_dir_target(path: Path, overwrite: bool) -> None:
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        if not overwrite:
            raise media_error(path, "exists and is not a folder", "remove it, choose another name, or pass "
                              "overwrite=True", OutputExistsError)
    elif _is_nonempty_dir(path) and not overwrite:
        raise media_error(path, "folder already exists and is not empty", "choose another name, remove it, "
                          "or pass overwrite=True to replace it", OutputExistsError)


def _open_modes(folder: Path) -> None:
    """Files in the folder as open() would have made them: libraries that write through their own temp files
    (safetensors via diffusers' save_pretrained) leave 0600, a model no one else on the machine can load."""
    for file in folder.rglob("*"):
        if file.is_file() and not file.is_symlink():
            executable = file.stat().st_mode & 0o111
            os.chmod(file, umask_mode(0o777 if executable else 0o666))


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh temp folder next to `path`; move it to `path` when the block succeeds.

    An existing non-empty `path` is refused up front (before any work is done) unless overwrite=True;
    with overwrite=True the old folder is moved aside, the new one moved in, then the old one deleted,
    so at every instant `path` is either the complete old folder or the complete new one (or, for a
    moment between two renames, absent).
    """
    path = Path(path)
    _check_dir_target(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    os.chmod(tmp, umask_mode(0o777))
    try:
        yield tmp
        _check_dir_target(path, overwrite)  # again: something may have appeared while we worked
        _open_modes(tmp)
        old = None
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            if _is_nonempty_dir(path):
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
                os.rmdir(old)
                os.rename(path, old)
            else:
                os.rmdir(path)
        try:
            os.rename(tmp, path)
        except BaseException:
            if old is not None:
                os.rename(old, path)  # put the user's data back
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(path.parent)
