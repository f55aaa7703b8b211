"""Errors raised by the media I/O layer.

Every message names the input (a path, or the name the caller gave an array) and says what to do about it,
so a user who feeds a bad file reads one line instead of a traceback from deep inside FFmpeg or PIL.
"""

from __future__ import annotations

import os


class MediaError(ValueError):
    """Bad or unreadable media. `str(err)` names the input and the fix; `.source` is that input (or None)."""

    def __init__(self, message: str, *, source: str | os.PathLike | None = None):
        super().__init__(message)
        self.source = None if source is None else os.fspath(source)


class MediaNotFoundError(MediaError, FileNotFoundError):
    """The input path does not exist (also a FileNotFoundError, so `except FileNotFoundError` works)."""


class OutputExistsError(MediaError, FileExistsError):
    """An output would overwrite data the user has not agreed to lose."""


def describe(source: str | os.PathLike | None) -> str:
    """How a message names an input: the path as given, or '<array>' for unnamed arrays."""
    return "<array>" if source is None else os.fspath(source)


def media_error(source: str | os.PathLike | None, problem: str, fix: str, cls: type = MediaError) -> MediaError:
    """Build the standard '<source>: <problem>; <fix>' message."""
    return cls(f"{describe(source)}: {problem}; {fix}", source=source)


def require_file(path: str | os.PathLike, what: str = "media file") -> str:
    """Return `path` as str, raising a MediaError (not a library traceback) if it is missing or a folder."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise media_error(p, f"no such {what}", "check the path (it is resolved from the current folder "
                          f"{os.getcwd()})", MediaNotFoundError)
    if os.path.isdir(p):
        raise media_error(p, f"is a folder, not a {what}", "give the path of a file inside it")
    if os.path.getsize(p) == 0:
        raise media_error(p, "file is empty (0 bytes)", f"give a non-empty {what}; the file may not have been "
                          "fully copied or written")
    return p


class MediaWarning(UserWarning):
    """Suspicious but usable media (clipping, very long input, a truncated tail that was dropped)."""
