"""Gesture metrics on pose sequences: DIV (Lee et al., 2019), Hand-C and Hand-V (Guan et al., 2025).

Poses follow the clip format (docs/clip_format.md): (F, 127, 3) keypoints, x and y in fractions of the
frame, then a confidence; rows 0-16 body (COCO-17), 17-84 face, 85-105 left hand, 106-126 right hand.
"""

from __future__ import annotations

import numpy as np

from physavatar.constants import NUM_BODY_KEYPOINTS, NUM_FACE_KEYPOINTS, NUM_HAND_KEYPOINTS, NUM_KEYPOINTS

_HANDS_START = NUM_BODY_KEYPOINTS + NUM_FACE_KEYPOINTS  # 85
# Gesture joints: COCO-17 upper body (nose..wrists, rows 0-10) and both hands; the face mesh and legs are not
# gestures, and would dominate the distance by count.
GESTURE_ROWS = np.r_[0:11, _HANDS_START:NUM_KEYPOINTS]
_L_SHOULDER, _R_SHOULDER = 5, 6
# Hand-V is the variance of coordinates given as fractions of the frame; ×100 keeps typical values near 1
# (a hand swinging ±15 % of the frame width scores ≈ 1) so the table prints readable numbers.
HAND_V_SCALE = 100.0


def _check_keypoints(keypoints: np.ndarray, name: str) -> np.ndarray:
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[1:] != (NUM_KEYPOINTS, 3):
        raise ValueError(f"{name}: expected keypoints of shape (F, {NUM_KEYPOINTS}, 3) (clip format), got {kp.shape}")
    return kp


def normalize_pose(keypoints: np.ndarray, min_confidence: float = 0.3, name: str = "keypoints") -> np.ndarray:
    """(F, 127, 3) keypoints -> (F, J, 2) gesture joints, centred on the shoulders and scaled by their width.

    Low-confidence joints keep their last confident position (0 before the first one), so a hand that drops
    out of view for a frame does not look like a jump; translation and body size drop out, which makes
    the distance a measure of motion rather than of framing.
    """
    kp = _check_keypoints(keypoints, name)
    xy, conf = kp[..., :2].copy(), kp[..., 2]
    shoulders_ok = (conf[:, _L_SHOULDER] >= min_confidence) & (conf[:, _R_SHOULDER] >= min_confidence)
    centre = 0.5 * (xy[:, _L_SHOULDER] + xy[:, _R_SHOULDER])  # (F, 2)
    width = np.linalg.norm(xy[:, _L_SHOULDER] - xy[:, _R_SHOULDER], axis=-1)  # (F,)
    if shoulders_ok.any():
        ref_width = float(np.median(width[shoulders_ok]))
        ref_centre = np.median(centre[shoulders_ok], axis=0)
    else:  # no body visible: keep frame coordinates around the frame centre
        ref_width, ref_centre = 1.0, np.array([0.5, 0.5])
    ref_width = ref_width if ref_width > 1e-6 else 1.0
    centre[~shoulders_ok] = ref_centre
    # A per-sequence scale (median shoulder width) so arm motion toward the camera is not normalised away.
    out = (xy - centre[:, None, :]) / ref_width
    out, conf = out[:, GESTURE_ROWS], conf[:, GESTURE_ROWS]
    last = np.zeros(out.shape[1:])
    for t in range(out.shape[0]):  # forward fill of unconfident joints
        ok = conf[t] >= min_confidence
        last[ok] = out[t, ok]
        out[t] = last
    return out.astype(np.float32)


def pose_windows(poses: np.ndarray, window: int, stride: int) -> np.ndarray:
    """(F, J, 2) poses -> (N, window, J, 2) windows starting every `stride` frames (none if F < window)."""
    poses = np.asarray(poses)
    if window < 1 or stride < 1:
        raise ValueError(f"pose windows: window ({window}) and stride ({stride}) must be ≥ 1")
    starts = range(0, poses.shape[0] - window + 1, stride)
    if not len(starts):
        return np.zeros((0, window) + poses.shape[1:], dtype=poses.dtype)
    return np.stack([poses[s : s + window] for s in starts])


def diversity(features: np.ndarray, max_pairs: int = 20_000, seed: int = 0) -> float:
    """DIV: mean Euclidean distance between pairs of gesture features (N, D) (Lee et al., 2019).

    All pairs when there are at most `max_pairs`, else a seeded random sample of pairs (as the reference
    code samples pairs). Identical features (a static pose) give exactly 0.
    """
    feats = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    n = feats.shape[0]
    if n < 2:
        raise ValueError(f"DIV needs at least 2 gesture windows, got {n}; give longer videos or a smaller window")
    i, j = np.triu_indices(n, k=1)
    if i.size > max_pairs:
        pick = np.random.default_rng(seed).choice(i.size, size=max_pairs, replace=False)
        i, j = i[pick], j[pick]
    return float(np.linalg.norm(feats[i] - feats[j], axis=-1).mean())


def hand_confidence(scores: np.ndarray) -> float:
    """Hand-C: mean detection confidence over frames and both hand slots; an undetected hand counts 0.

    `scores` is (F, 2) (left, right), as a whole-body pose estimator gives a low confidence to a hand that
    is not visible; so a video whose hands are hidden or malformed scores low.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != 2 or s.shape[0] == 0:
        raise ValueError(f"Hand-C: expected (F, 2) per-hand scores with F ≥ 1, got shape {s.shape}")
    return float(np.clip(s, 0.0, 1.0).mean())


def hand_variance(landmarks: np.ndarray, detected: np.ndarray) -> float:
    """Hand-V: variance over time of the hand landmarks, × HAND_V_SCALE; NaN when no hand is seen twice.

    landmarks (F, 2, 21, 2) with x, y as fractions of the frame; detected (F, 2) bool. For each hand seen in
    at least 2 frames: mean over its 21 landmarks of var_t(x) + var_t(y) over the frames where it was
    detected; then the mean over such hands. A static hand gives 0.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    det = np.asarray(detected, dtype=bool)
    if lm.ndim != 4 or lm.shape[1:] != (2, NUM_HAND_KEYPOINTS, 2) or det.shape != lm.shape[:2]:
        raise ValueError(
            f"Hand-V: expected landmarks (F, 2, {NUM_HAND_KEYPOINTS}, 2) and detected (F, 2), got "
            f"{lm.shape} and {det.shape}"
        )
    per_hand = [
        lm[det[:, h], h].var(axis=0).sum(axis=-1).mean() for h in range(2) if det[:, h].sum() >= 2
    ]
    return float(np.mean(per_hand) * HAND_V_SCALE) if per_hand else float("nan")
