"""Thin PyAV helpers shared by audio and video: open inputs with FFmpeg errors turned into MediaErrors."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import av

from physavatar.io.errors import MediaError, media_error, require_file

FFMPEG_ERRORS = (av.error.FFmpegError, OSError, EOFError, RuntimeError)


def ffmpeg_reason(err: BaseException) -> str:
    """FFmpeg's own words, without the errno prefix and repeated path."""
    reason = getattr(err, "strerror", None) or str(err)
    return str(reason).strip() or type(err).__name__


@contextlib.contextmanager
def open_input(path: str | os.PathLike, what: str = "media file") -> Iterator[av.container.InputContainer]:
    """av.open for reading; missing, empty or unreadable files become MediaErrors naming the path."""
    p = require_file(path, what)
    a_what = ("an " if what[:1] in "aeiou" else "a ") + what
    try:
        container = av.open(p, mode="r", metadata_errors="ignore")
    except FFMPEG_ERRORS as e:
        raise media_error(p, f"is not a readable {what} (FFmpeg: {ffmpeg_reason(e)})",
                          "check that it is a complete, uncorrupted audio/video file (e.g. play it, or run "
                          "`ffprobe` on it); a renamed text or image file is not media") from None
    if is_still_image(container):
        container.close()
        raise media_error(p, f"is a still image, not {a_what}", "pass it to load_image(), or give a "
                          "video/audio file")
    try:
        yield container
    finally:
        with contextlib.suppress(*FFMPEG_ERRORS):
            container.close()


def is_still_image(container) -> bool:
    """FFmpeg happily opens a png/jpg as a one-frame 'video'; we call that what it is."""
    name = container.format.name or ""
    return name == "image2" or name.endswith("_pipe")


def video_streams(container) -> list:
    """Real video streams: an mp3's or m4a's embedded cover art is a one-frame 'video' we skip."""
    art = av.stream.Disposition.attached_pic
    return [s for s in container.streams.video if not (s.disposition & art)]


def decode_error(path: str, what: str, err: BaseException) -> MediaError:
    return media_error(path, f"{what} could not be decoded (FFmpeg: {ffmpeg_reason(err)})",
                       "the file is probably truncated or corrupt: re-export or re-download it")
