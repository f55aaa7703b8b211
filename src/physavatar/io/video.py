"""Video probing and reading at a fixed frame rate (any input fps, variable frame rate included).

Frames are resampled by presentation timestamps: output frame k shows the source frame whose timestamp is
nearest to k / fps (times measured from the first frame), and a clip of duration D seconds gives
round(D * fps) output frames. Timestamps are exact fractions, so no rounding drift over long videos.
Writing lives in `video_writer` and is re-exported here.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import numpy as np

from physavatar.constants import FPS
from physavatar.io._av import FFMPEG_ERRORS, decode_error, open_input, video_streams
from physavatar.io.errors import MediaWarning, media_error
from physavatar.io.video_writer import VideoWriter, write_video

__all__ = ["VideoInfo", "probe_video", "read_video", "iter_video_frames", "VideoWriter", "write_video"]

LONG_SECONDS = 600.0  # warn above 10 minutes
MAX_READ_BYTES = 8 * 2**30  # read_video refuses to build a bigger array (stream with iter_video_frames)
_VFR_TOLERANCE = 0.05  # frame intervals differing from the median by more than 5% (and > 1 tick) mean VFR
# Truncation: readable frames end more than 2 frames + 1% before the header's video duration (10% + 0.5 s
# when only the container's approximate duration is known).


@dataclass(frozen=True)
class VideoInfo:
    duration_s: float  # from the first frame's timestamp to the end of the last frame
    fps: float  # average: num_frames / duration_s
    is_vfr: bool  # frame intervals vary (phone recordings, screen captures)
    num_frames: int  # frames stored in the file (at its own rate)
    width: int
    height: int
    has_audio: bool
    audio_sample_rate: int | None
    codec: str
    path: str = ""
    rotation: int = 0  # display rotation (counter-clockwise degrees) applied to frames; width/height are as shown
    # exact timing, for resampling: presentation time of frame = (pts - start_pts) * time_base
    start_pts: int = 0
    time_base: Fraction = Fraction(1, 1)
    duration: Fraction = Fraction(0)


def _packet_times(container, stream, path: str) -> tuple[list[int], list[int], int]:
    """pts and durations of every video packet in stream time_base, and the display rotation.

    Demux only, except for the first decodable frame: phone videos store their orientation as a display
    matrix that PyAV exposes on decoded frames (`frame.rotation`).
    """
    pts, durs, rotation = [], [], None
    try:
        for i, packet in enumerate(container.demux(stream)):
            if rotation is None and i < 64:  # bounded: a broken stream must not cost a full decode here
                try:
                    frames = stream.codec_context.decode(packet)
                except FFMPEG_ERRORS:
                    frames = []
                if frames:
                    rotation = int(round(frames[0].rotation or 0)) % 360
            if packet.pts is None or packet.size == 0:
                continue
            pts.append(int(packet.pts))
            durs.append(int(packet.duration or 0))
    except FFMPEG_ERRORS as e:
        raise decode_error(path, "video", e) from None
    return pts, durs, rotation if rotation in (90, 180, 270) else 0


def _rotate(img: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a display rotation (counter-clockwise degrees, as FFmpeg's display matrix gives it)."""
    return np.ascontiguousarray(np.rot90(img, k=rotation // 90)) if rotation else img


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Read a video's timing and format without decoding it; MediaError for non-video, corrupt, empty files."""
    path = os.fspath(path)
    with open_input(path, "video file") as container:
        streams = video_streams(container)
        if not streams:
            what = "an audio-only file" if container.streams.audio else "not a video"
            raise media_error(path, f"has no video stream ({what})", "give a video file (mp4/mov/mkv/webm)")
        stream = streams[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        codec = stream.codec_context.name if stream.codec_context else "unknown"
        width, height = stream.codec_context.width, stream.codec_context.height
        tb = stream.time_base or Fraction(1, 90000)
        # what the header promises: the video stream's own duration (exact in mp4/mov), else the container's
        # (which may include longer audio, so it is only trusted for video-only files)
        declared, strict = (stream.duration * tb, True) if stream.duration else (
            (Fraction(container.duration, 1_000_000), False) if container.duration and audio is None else (None, False))
        pts, durs, rotation = _packet_times(container, stream, path)
    if not pts:
        raise media_error(path, "has no video frames (zero length)", "re-export the video; it may be truncated")
    if width <= 0 or height <= 0:
        raise media_error(path, f"video has an invalid frame size {width}x{height}", "re-export the video")
    if rotation in (90, 270):
        width, height = height, width

    # 1. intervals between consecutive presentation times: the frame rate and whether it varies
    order = np.argsort(pts, kind="stable")
    spts = np.asarray(pts, dtype=np.int64)[order]
    diffs = np.diff(spts)
    diffs = diffs[diffs > 0]
    median = int(np.median(diffs)) if diffs.size else 0
    is_vfr = bool(diffs.size >= 2 and np.max(np.abs(diffs - median)) > max(1, _VFR_TOLERANCE * median))

    # 2. duration: up to the end of the last frame (its packet duration, else a typical interval)
    last_dur = int(durs[order[-1]]) or median or int(round(1 / (float(stream.average_rate or 25) * tb)))
    duration = (int(spts[-1] - spts[0]) + last_dur) * tb
    if duration <= 0:
        raise media_error(path, "video has zero duration", "re-export the video")
    slack = (2 * median * tb + declared / 100) if strict else (declared / 10 + Fraction(1, 2)) if declared else 0
    if declared and duration < declared - slack:
        raise media_error(path, f"video is truncated: frames stop at {float(duration):.2f} s of a declared "
                          f"{float(declared):.2f} s", "re-copy or re-download the file (it was cut short)")
    return VideoInfo(
        duration_s=float(duration), fps=float(len(pts) / duration), is_vfr=is_vfr, num_frames=len(pts),
        width=int(width), height=int(height), has_audio=audio is not None,
        audio_sample_rate=int(audio.rate) if audio is not None and audio.rate else None,
        codec=codec, path=path, rotation=rotation, start_pts=int(spts[0]), time_base=Fraction(tb),
        duration=Fraction(duration),
    )


def iter_video_frames(path: str | os.PathLike, fps: int = FPS, *, max_frames: int | None = None,
                      info: VideoInfo | None = None) -> Iterator[np.ndarray]:
    """Yield (H, W, 3) uint8 RGB frames resampled to `fps` (nearest source frame at each time k / fps)."""
    path = os.fspath(path)
    target = Fraction(fps)
    if target <= 0:
        raise ValueError(f"{path}: fps {fps!r} must be positive")
    if max_frames is not None and max_frames < 0:
        raise ValueError(f"{path}: max_frames {max_frames!r} must be >= 0")
    info = info or probe_video(path)
    n_out = int(round(info.duration * target))  # Fraction round: exact, half to even
    if max_frames is not None:
        n_out = min(n_out, int(max_frames))
    if n_out == 0:
        return
    if n_out > LONG_SECONDS * target:
        warnings.warn(f"{path}: reading {n_out} frames ({n_out / float(target) / 60:.1f} min); this takes a while: "
                      "pass max_frames or cut the video if that is not intended", MediaWarning, stacklevel=2)
    k = 0  # next output frame; its time is k / target
    prev_t, prev_frame, prev_rgb = None, None, None

    def rgb():
        nonlocal prev_rgb
        if prev_rgb is None:
            prev_rgb = _rotate(prev_frame.to_ndarray(format="rgb24"), info.rotation)
        return prev_rgb

    with open_input(path, "video file") as container:
        stream = video_streams(container)[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                if frame.pts is None:  # rare (raw streams): place it one typical interval after the previous
                    t = (prev_t + 1 / Fraction(info.fps).limit_denominator(1001)) if prev_t is not None else Fraction(0)
                else:
                    t = (frame.pts - info.start_pts) * info.time_base
                if prev_frame is not None:
                    if t <= prev_t:  # out-of-order or duplicate timestamp: keep the earlier frame
                        continue
                    # every output time nearer to the previous frame than to this one shows the previous frame
                    mid = (prev_t + t) / 2
                    while k < n_out and Fraction(k) / target <= mid:
                        yield rgb()
                        k += 1
                    if k >= n_out:
                        return
                prev_t, prev_frame, prev_rgb = t, frame, None
        except FFMPEG_ERRORS as e:
            raise decode_error(path, "video", e) from None
        while prev_frame is not None and k < n_out:  # the tail shows the last frame
            yield rgb()
            k += 1


def read_video(path: str | os.PathLike, fps: int = FPS, *, max_frames: int | None = None,
               max_bytes: int = MAX_READ_BYTES) -> np.ndarray:
    """All frames resampled to `fps` as uint8 (F, H, W, 3), F = round(duration * fps) (capped by max_frames).

    Refuses (MediaError) to allocate more than `max_bytes`: stream long videos with `iter_video_frames`.
    """
    path = os.fspath(path)
    info = probe_video(path)
    n_out = int(round(info.duration * Fraction(fps)))
    if max_frames is not None:
        n_out = min(n_out, max(int(max_frames), 0))
    need = n_out * info.height * info.width * 3
    if need > max_bytes:
        raise media_error(path, f"{n_out} frames of {info.width}x{info.height} need {need / 2**30:.1f} GiB in memory",
                          "stream it with iter_video_frames(), pass max_frames, or raise max_bytes")
    out = np.empty((n_out, info.height, info.width, 3), np.uint8)
    i = 0
    for i, frame in enumerate(iter_video_frames(path, fps, max_frames=max_frames, info=info), start=1):
        if frame.shape != out.shape[1:]:  # the stream changed size mid-way
            raise media_error(path, f"frame size changes mid-video ({frame.shape[1]}x{frame.shape[0]} vs "
                              f"{info.width}x{info.height})", "re-encode it at one size (e.g. with ffmpeg -vf scale)")
        out[i - 1] = frame
    return out[:i]
