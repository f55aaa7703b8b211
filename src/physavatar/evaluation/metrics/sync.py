"""Sync-C / Sync-D: SyncNet's audio-visual offset search (Chung & Zisserman, 2016; syncnet_python).

Given per-frame lip embeddings V (T, D) and audio embeddings A (T, D) (each the embedding of a 5-frame /
0.2 s window starting at that frame), syncnet_python's `calc_pdist` pads A with `vshift` zero rows on
both sides and, for every frame i and shift k in [0, 2·vshift], takes d[i, k] = ‖V[i] − A_pad[i + k]‖.
With the mean over frames m[k] = mean_i d[i, k]:

    Sync-D = min_k m[k]            (lower is better)
    Sync-C = median_k m[k] − min_k m[k]   (the confidence, higher is better)
    offset = vshift − argmin_k m[k]       (frames; 0 when in sync)

so offset = −s when the audio runs s frames late (A[i + s] belongs with V[i]). Padded rows are part of the
mean, exactly as in the reference code, so numbers are comparable with published ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# syncnet_python evaluates ±15 frames in its published protocol (`--vshift 15`).
DEFAULT_VSHIFT = 15
# torch.nn.functional.pairwise_distance adds eps to the difference before the norm; kept for parity.
_PAIRWISE_EPS = 1e-6


@dataclass(frozen=True)
class SyncResult:
    offset: int  # frames, vshift − argmin
    confidence: float  # Sync-C
    min_dist: float  # Sync-D
    mean_dists: np.ndarray  # (2·vshift + 1,) mean distance per shift k


def sync_offset_search(video_emb: np.ndarray, audio_emb: np.ndarray, vshift: int = DEFAULT_VSHIFT) -> SyncResult:
    """The offset search of syncnet_python's `SyncNetInstance.evaluate` on precomputed embeddings."""
    v = np.asarray(video_emb, dtype=np.float64)
    a = np.asarray(audio_emb, dtype=np.float64)
    if v.ndim != 2 or a.ndim != 2 or v.shape[1] != a.shape[1]:
        raise ValueError(f"sync: expected (T, D) video and audio embeddings of equal D, got {v.shape} and {a.shape}")
    if vshift < 0:
        raise ValueError(f"sync: vshift must be ≥ 0, got {vshift}")
    t = min(len(v), len(a))
    if t < 1:
        raise ValueError("sync: no embedding windows (the video is shorter than SyncNet's 5-frame window)")
    v, a = v[:t], a[:t]
    win = 2 * vshift + 1
    a_pad = np.concatenate([np.zeros((vshift, a.shape[1])), a, np.zeros((vshift, a.shape[1]))])
    # (T, win, D): row i holds A_pad[i : i + win]
    idx = np.arange(t)[:, None] + np.arange(win)[None, :]
    dists = np.linalg.norm(v[:, None, :] - a_pad[idx] + _PAIRWISE_EPS, axis=-1)  # (T, win)
    mean_dists = dists.mean(axis=0)
    k = int(np.argmin(mean_dists))
    min_dist = float(mean_dists[k])
    # torch.median returns the lower of the two middle values for even counts; win is odd, so it is exact.
    conf = float(np.median(mean_dists) - min_dist)
    return SyncResult(offset=vshift - k, confidence=conf, min_dist=min_dist, mean_dists=mean_dists)
