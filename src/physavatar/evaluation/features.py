"""Per-video measurements: each function takes one decoded video and a backbone and returns numbers or features.

Side-effect free apart from running the backbone; the runner decides which to call and aggregates.
"""

from __future__ import annotations

import numpy as np

from physavatar.evaluation.backbones import SkipVideo
from physavatar.evaluation.metrics import normalize_pose, pose_windows, sync_offset_search
from physavatar.evaluation.metrics.gesture import hand_confidence, hand_variance


def fvd_clips(frames: np.ndarray, clip_len: int, stride: int) -> np.ndarray:
    """(F, H, W, 3) -> (N, clip_len, H, W, 3) clips starting every `stride` frames."""
    starts = range(0, len(frames) - clip_len + 1, stride)
    if not len(starts):
        raise SkipVideo(f"shorter than one FVD clip ({len(frames)} < {clip_len} frames)")
    return np.stack([frames[s : s + clip_len] for s in starts])


def gesture_windows(keypoints: np.ndarray | None, window: int, stride: int) -> np.ndarray:
    if keypoints is None:
        raise SkipVideo("no pose sequence (no keypoints.npy, and no pose backend ran on the video)")
    windows = pose_windows(normalize_pose(keypoints), window, stride)
    if len(windows) == 0:
        raise SkipVideo(f"shorter than one gesture window ({len(keypoints)} < {window} frames)")
    return windows


def sync_scores(backbone, frames: np.ndarray, audio: np.ndarray | None, keypoints, vshift: int) -> dict:
    if audio is None:
        raise SkipVideo("no audio (the video has no audio track and no paired reference audio)")
    # The backbone finds and crops the face itself (SyncNet from keypoints or a detector; others may not need it).
    video_emb, audio_emb = backbone.embed(frames, audio, keypoints)
    res = sync_offset_search(video_emb, audio_emb, vshift=vshift)
    return {"sync_c": res.confidence, "sync_d": res.min_dist, "offset": res.offset}


def hand_scores(backbone, frames: np.ndarray, stride: int) -> dict:
    track = backbone.track(frames[::stride])
    return {"hand_c": hand_confidence(track.scores), "hand_v": hand_variance(track.landmarks, track.detected)}


def face_embeddings(backbone, frames: np.ndarray, stride: int) -> np.ndarray:
    embs = [e for e in (backbone.embed(f) for f in frames[::stride]) if e is not None]
    if not embs:
        raise SkipVideo("no face found in the sampled frames")
    return np.stack(embs)
