"""Exact alignment between audio samples, video frames and VAE latent frames.

Integer arithmetic only: frame k's audio is samples [samples_for_frames(k), samples_for_frames(k+1)),
so boundaries never drift however long the clip (at 16 kHz / 25 fps that is exactly 640 samples a frame).
Latent frames follow the Wan VAE: latent 0 is video frame 0 alone, latent j > 0 is video frames
1 + 4(j-1) .. 4j, so F = 1 + 4k video frames <-> 1 + k latents (81 <-> 21).
"""

from __future__ import annotations

import numpy as np

from physavatar.constants import FPS, SAMPLE_RATE, VAE_TEMPORAL_STRIDE, num_latent_frames, num_video_frames

__all__ = [
    "samples_for_frames", "frames_for_samples", "frame_sample_range", "frames_for_seconds",
    "latents_for_frames", "frames_for_latents", "latent_frame_range", "latent_sample_range",
    "samples_for_latents", "valid_num_frames", "pad_or_trim_audio", "num_latent_frames", "num_video_frames",
]


def _check_rates(sr: int, fps: int) -> None:
    if int(sr) != sr or sr <= 0 or int(fps) != fps or fps <= 0:
        raise ValueError(f"sample rate {sr!r} and fps {fps!r} must be positive integers")


def _check_count(n: int, what: str) -> int:
    if isinstance(n, (bool, float)) or int(n) != n or n < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {n!r}")
    return int(n)


def samples_for_frames(num_frames: int, sr: int = SAMPLE_RATE, fps: int = FPS) -> int:
    """Audio samples spanned by the first `num_frames` frames: round(num_frames * sr / fps), exactly."""
    _check_rates(sr, fps)
    n = _check_count(num_frames, "num_frames")
    return (n * sr + fps // 2) // fps  # round half up, integer only


def frames_for_samples(num_samples: int, sr: int = SAMPLE_RATE, fps: int = FPS, *, rounding: str = "floor") -> int:
    """Video frames covered by `num_samples` samples.

    rounding="floor" counts only frames whose audio is complete (the safe default for cutting clips),
    "ceil" counts a partial last frame too (pad the audio), "round" the nearest count.
    """
    _check_rates(sr, fps)
    n = _check_count(num_samples, "num_samples")
    if rounding == "floor":
        return n * fps // sr
    if rounding == "ceil":
        return -(-n * fps // sr)
    if rounding == "round":
        return (2 * n * fps + sr) // (2 * sr)
    raise ValueError(f"rounding={rounding!r}: use 'floor', 'ceil' or 'round'")


def frame_sample_range(frame: int, sr: int = SAMPLE_RATE, fps: int = FPS) -> tuple[int, int]:
    """[start, end) sample indices of video frame `frame` (consecutive frames tile the audio exactly)."""
    return samples_for_frames(frame, sr, fps), samples_for_frames(_check_count(frame, "frame") + 1, sr, fps)


def frames_for_seconds(seconds: float, fps: int = FPS) -> int:
    """Frame count for a duration: round(seconds * fps) (what a 30 -> 25 fps resample produces)."""
    if not np.isfinite(seconds) or seconds < 0:
        raise ValueError(f"duration {seconds!r} s must be finite and non-negative")
    return int(round(seconds * fps))


def latents_for_frames(num_frames: int) -> int:
    """Latent frames for F = 1 + 4k video frames (raises for other F: see `valid_num_frames`)."""
    return num_latent_frames(_check_count(num_frames, "num_frames"))


def frames_for_latents(num_latents: int) -> int:
    """Video frames decoded from f latent frames: 1 + 4(f - 1)."""
    if _check_count(num_latents, "num_latents") < 1:
        raise ValueError("num_latents must be >= 1")
    return num_video_frames(num_latents)


def valid_num_frames(num_frames: int, rounding: str = "floor") -> int:
    """The nearest VAE-valid frame count 1 + 4k at or below ("floor") or at or above ("ceil") num_frames."""
    n = _check_count(num_frames, "num_frames")
    if n < 1:
        raise ValueError("num_frames must be >= 1")
    k, rem = divmod(n - 1, VAE_TEMPORAL_STRIDE)
    if rounding == "floor" or rem == 0:
        return 1 + VAE_TEMPORAL_STRIDE * k
    if rounding == "ceil":
        return 1 + VAE_TEMPORAL_STRIDE * (k + 1)
    raise ValueError(f"rounding={rounding!r}: use 'floor' or 'ceil'")


def latent_frame_range(latent: int) -> tuple[int, int]:
    """[start, end) video frames encoded by latent frame `latent` (0 -> [0, 1), 1 -> [1, 5), ...)."""
    j = _check_count(latent, "latent")
    if j == 0:
        return 0, 1
    return 1 + VAE_TEMPORAL_STRIDE * (j - 1), 1 + VAE_TEMPORAL_STRIDE * j


def latent_sample_range(latent: int, sr: int = SAMPLE_RATE, fps: int = FPS) -> tuple[int, int]:
    """[start, end) audio samples of the video frames behind latent frame `latent`."""
    f0, f1 = latent_frame_range(latent)
    return samples_for_frames(f0, sr, fps), samples_for_frames(f1, sr, fps)


def samples_for_latents(num_latents: int, sr: int = SAMPLE_RATE, fps: int = FPS) -> int:
    """Audio samples behind f latent frames (= samples of 1 + 4(f - 1) video frames)."""
    return samples_for_frames(frames_for_latents(num_latents), sr, fps)


def pad_or_trim_audio(wav: np.ndarray, num_frames: int, sr: int = SAMPLE_RATE, fps: int = FPS) -> np.ndarray:
    """Zero-pad or cut the last axis of `wav` to exactly samples_for_frames(num_frames) samples."""
    wav = np.asarray(wav)
    if wav.ndim == 0:
        raise ValueError("pad_or_trim_audio: wav must have at least one axis (samples last)")
    target = samples_for_frames(num_frames, sr, fps)
    n = wav.shape[-1]
    if n >= target:
        return wav[..., :target]
    pad = [(0, 0)] * (wav.ndim - 1) + [(0, target - n)]
    return np.pad(wav, pad)
