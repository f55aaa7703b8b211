"""Pure planning of clips inside a usable segment: 3–15 s pieces whose frame counts the Wan VAE can encode.

Every clip has F = 1 + 4k frames (`physavatar.constants.num_latent_frames`), so `extract` can encode any
curated clip without trimming. A segment longer than `max_sec` is cut into equal pieces.
"""

from __future__ import annotations

import math

from physavatar.constants import VAE_TEMPORAL_STRIDE


def _vae_floor(n: int) -> int:
    """Largest 1 + 4k <= n."""
    return n - (n - 1) % VAE_TEMPORAL_STRIDE if n >= 1 else 0


def _vae_ceil(n: int) -> int:
    """Smallest 1 + 4k >= n."""
    return n + (-(n - 1)) % VAE_TEMPORAL_STRIDE if n >= 1 else 1


def clip_frame_bounds(min_sec: float, max_sec: float, fps: int) -> tuple[int, int]:
    """(shortest, longest) clip in frames, both 1 + 4k and inside [min_sec, max_sec]."""
    lo = _vae_ceil(math.ceil(min_sec * fps - 1e-9))
    hi = _vae_floor(math.floor(max_sec * fps + 1e-9))
    if lo > hi:
        raise ValueError(f"no clip length of 1 + 4k frames lies in [{min_sec}, {max_sec}] s at {fps} fps; "
                         "widen --min-sec/--max-sec")
    return lo, hi


def plan_clips(start: int, end: int, min_frames: int, max_frames: int) -> list[tuple[int, int]]:
    """Split frames [start, end) into equal consecutive clips of min..max frames (each 1 + 4k); [] if too short.

    Leftover frames (< 4 per clip) are dropped at the end of each piece, so clips never overlap.
    """
    n = end - start
    if n < min_frames:
        return []
    k = math.ceil(n / max_frames)
    piece = n // k
    length = _vae_floor(min(piece, max_frames))
    if length < min_frames:  # only possible when max < 2 * min; fewer, longer pieces then fit
        k -= 1
        length = _vae_floor(min(n // k, max_frames))
    return [(start + i * piece, start + i * piece + length) for i in range(k)]
