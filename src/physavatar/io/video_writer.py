"""Streaming, atomic H.264 + AAC writer.

Frames go in chunk by chunk (memory stays bounded however long the video); the file is written under a
temporary name in the destination folder and renamed onto the destination only by a successful close().
If anything fails (or the `with` block raises) the temporary is deleted and an existing file at the
destination is left untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import av
import numpy as np

from physavatar.constants import FPS, SAMPLE_RATE
from physavatar.io.atomic import umask_mode
from physavatar.io._av import FFMPEG_ERRORS, ffmpeg_reason
from physavatar.io.errors import MediaError, OutputExistsError, media_error

_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
_AAC_FRAME = 1024  # AAC encodes 1024 samples per frame


class VideoWriter:
    """Write RGB uint8 frames as H.264 (yuv420p) with optional AAC audio, atomically.

    >>> with VideoWriter("out.mp4", fps=25, audio=wav, sample_rate=16000) as w:
    ...     for chunk in chunks:          # (H, W, 3) or (N, H, W, 3) uint8
    ...         w.write(chunk)
    """

    def __init__(self, path: str | os.PathLike, fps: int = FPS, *, audio: np.ndarray | None = None,
                 sample_rate: int = SAMPLE_RATE, crf: int = 18, preset: str = "medium",
                 audio_bitrate: int = 96_000, faststart: bool = True):
        self.path = Path(path)
        name = os.fspath(path)
        fmt = _FORMATS.get(self.path.suffix.lower())
        if fmt is None:
            raise media_error(name, f"unsupported video suffix {self.path.suffix!r}",
                              f"use one of {sorted(_FORMATS)} (.mp4 is the clip format)")
        if self.path.is_dir():
            raise media_error(name, "is an existing folder", "give a file path", OutputExistsError)
        try:
            self.fps = Fraction(fps).limit_denominator(1001)  # 29.97 -> 2997/100, not a 52-bit fraction
        except (TypeError, ValueError):
            raise media_error(name, f"fps {fps!r} is not a number", "pass e.g. fps=25") from None
        if self.fps <= 0:
            raise media_error(name, f"fps {fps!r} must be positive", "pass e.g. fps=25")
        if not (isinstance(crf, (int, np.integer)) and 0 <= crf <= 51):
            raise media_error(name, f"crf {crf!r} is out of range", "pass an integer 0-51 (18 is visually lossless)")
        self.sample_rate = int(sample_rate)
        self._audio = None if audio is None else self._check_audio(audio, name)
        self._crf, self._preset = int(crf), preset
        self._audio_bitrate = int(audio_bitrate)
        self.num_frames = 0
        self.size: tuple[int, int] | None = None  # (H, W) once the first frame arrives
        self._vstream = self._astream = None
        self._audio_pos = 0
        self._closed = False

        # 1. reserve a temp name next to the destination (same filesystem, so the final rename is atomic)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.tmp-", suffix=self.path.suffix, dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        # 2. open the muxer; the audio stream is added now, the video stream once we know the frame size
        try:
            opts = {"movflags": "+faststart"} if faststart and fmt in ("mp4", "mov") else {}
            self._container = av.open(tmp, mode="w", format=fmt, options=opts)
            if self._audio is not None:
                self._astream = self._container.add_stream("aac", rate=self.sample_rate)
                self._astream.layout = "mono"
                self._astream.bit_rate = self._audio_bitrate
        except FFMPEG_ERRORS as e:
            self._remove_tmp()
            raise media_error(name, f"cannot open the video encoder (FFmpeg: {ffmpeg_reason(e)})",
                              "check the sample rate (AAC takes 8000-96000 Hz) and that PyAV has libx264") from None

    # ----------------------------------------------------------------------------------------------- input checks
    def _check_audio(self, audio: np.ndarray, name: str) -> np.ndarray:
        a = np.asarray(audio)
        if a.ndim == 2 and 1 in a.shape:
            a = a.reshape(-1)
        if a.ndim != 1 or a.size == 0:
            raise media_error(name, f"audio to mux has shape {a.shape}", "pass a non-empty 1-D mono waveform")
        if a.dtype == np.int16:
            a = a.astype(np.float32) / 32768.0
        elif not np.issubdtype(a.dtype, np.floating):
            raise media_error(name, f"audio to mux has dtype {a.dtype}", "pass float audio in [-1, 1]")
        if not np.isfinite(a).all():
            raise media_error(name, "audio to mux contains NaN/Inf", "fix the code that produced it")
        if not 8000 <= self.sample_rate <= 96000:
            raise media_error(name, f"audio sample rate {self.sample_rate} Hz cannot be AAC-encoded",
                              "resample to 16000 Hz (or anything in 8000-96000 Hz) first")
        return np.clip(a, -1.0, 1.0).astype(np.float32)

    def _check_frames(self, frames: np.ndarray) -> np.ndarray:
        f = np.asarray(frames)
        if f.ndim == 3:
            f = f[None]
        if f.ndim != 4 or f.shape[-1] != 3:
            raise media_error(self.path, f"frames have shape {f.shape}", "pass (H, W, 3) or (N, H, W, 3) RGB "
                              "arrays (drop an alpha channel with frames[..., :3])")
        if f.dtype != np.uint8:
            raise media_error(self.path, f"frames have dtype {f.dtype}, not uint8", "convert floats in [0, 1] with "
                              "(x * 255).round().clip(0, 255).astype(np.uint8)")
        h, w = f.shape[1:3]
        if self.size is None:
            if h < 2 or w < 2 or h % 2 or w % 2:
                raise media_error(self.path, f"frames are {w}x{h} (W x H)", "H.264 yuv420p needs even width and "
                                  f"height: crop or pad to {w - w % 2}x{h - h % 2}")
        elif (h, w) != self.size:
            raise media_error(self.path, f"frame size changed from {self.size[1]}x{self.size[0]} to {w}x{h}",
                              "every frame of a video must have the same size: resize before writing")
        return f

    # ------------------------------------------------------------------------------------------------- encoding
    def _open_video_stream(self, h: int, w: int) -> None:
        s = self._container.add_stream("libx264", rate=self.fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.time_base = 1 / self.fps
        s.options = {"crf": str(self._crf), "preset": self._preset}
        self._vstream, self.size = s, (h, w)

    def _encode_audio_until(self, end: int) -> None:
        # Interleave: keep audio up to the video time so the muxer never buffers one stream for long.
        if self._astream is None:
            return
        end = min(end, self._audio.size)
        while self._audio_pos < end:
            chunk = self._audio[self._audio_pos:min(self._audio_pos + _AAC_FRAME, end)]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
            frame.sample_rate = self.sample_rate
            frame.pts = self._audio_pos
            frame.time_base = Fraction(1, self.sample_rate)
            self._container.mux(self._astream.encode(frame))
            self._audio_pos += chunk.size

    def write(self, frames: np.ndarray | Iterable[np.ndarray]) -> None:
        """Append frames: (H, W, 3) or (N, H, W, 3) uint8 RGB, or an iterable of such."""
        if self._closed:
            raise MediaError(f"{self.path}: write() after close(); open a new VideoWriter", source=self.path)
        if not isinstance(frames, np.ndarray):
            for chunk in frames:
                self.write(chunk)
            return
        f = self._check_frames(frames)
        try:
            if self._vstream is None:
                self._open_video_stream(*f.shape[1:3])
            for img in f:
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                vf.pts = self.num_frames
                self._container.mux(self._vstream.encode(vf))
                self.num_frames += 1
            self._encode_audio_until(int(self.num_frames * self.sample_rate / self.fps))
        except FFMPEG_ERRORS as e:
            raise media_error(self.path, f"encoding failed (FFmpeg: {ffmpeg_reason(e)})",
                              "check free disk space and the frame size") from None

    # ------------------------------------------------------------------------------------------------ finishing
    def close(self) -> None:
        """Flush the encoders, finish the file and rename it onto `path`. Idempotent."""
        if self._closed:
            return
        try:
            if self.num_frames == 0:
                raise media_error(self.path, "no frames were written", "call write() with at least one frame")
            try:
                self._container.mux(self._vstream.encode(None))
                if self._astream is not None:
                    self._encode_audio_until(self._audio.size)
                    self._container.mux(self._astream.encode(None))
                self._container.close()
            except FFMPEG_ERRORS as e:
                raise media_error(self.path, f"finishing the video failed (FFmpeg: {ffmpeg_reason(e)})",
                                  "check free disk space") from None
            os.chmod(self._tmp, umask_mode())
            os.replace(self._tmp, self.path)
            self._closed = True
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop everything written so far; the destination is left as it was."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._container.close()
        self._remove_tmp()

    def _remove_tmp(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self):  # a writer dropped without close() must not leave a temp file behind
        with contextlib.suppress(Exception):
            if not self._closed:
                self.abort()


def write_video(path: str | os.PathLike, frames: np.ndarray | Iterable[np.ndarray], fps: int = FPS,
                audio: np.ndarray | None = None, sample_rate: int = SAMPLE_RATE, **kwargs) -> None:
    """Write frames ((N, H, W, 3) uint8, or an iterable of chunks) as an H.264/AAC file, atomically."""
    with VideoWriter(path, fps, audio=audio, sample_rate=sample_rate, **kwargs) as w:
        w.write(frames)
