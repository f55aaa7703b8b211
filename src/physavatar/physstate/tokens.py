"""Keypoints <-> physical-state tokens: a fixed, seeded, orthonormal linear code (4 tokens x 256 per frame).

The paper's physical-state tokens are X-Pose's object-level tokens (Appendix B): per frame one 256-d token
each for body, face, left hand and right hand = 1024 values. Where no X-Pose is available (the synthetic
world, MediaPipe keypoints) we build tokens with the same layout from keypoints, so the model and the
trainer never see a difference.

Encoding of one part with n keypoints (body 17, face 68, hand 21), per frame:

    v = [x - 0.5, y - 0.5, c - 0.5 for each keypoint]          (3n,)   centred at the frame centre
    token = Q_part @ v                                         (256,)  Q_part: 256 x 3n, Q^T Q = I

Q_part is the Q factor of numpy's QR of a 256 x 3n standard-normal matrix drawn from
`np.random.default_rng(TOKEN_SEED + part index)` (signs fixed so diag(R) > 0): a deterministic function of
the code, not a stored file. Because the columns are orthonormal, `decode = Q^T @ token + 0.5` recovers
the keypoints exactly in float32 (error ~3e-8); after float16 storage (phys_tokens.npy) the worst-case
error is below `ROUND_TRIP_TOL_FP16` = 2e-3 (measured 2.1e-4 on random keypoints; tested). Keypoints with
confidence 0 (e.g. a hand out of frame) are encoded as x = y = 0.5, c = 0 so missing parts carry no stray
coordinates; they decode to (0.5, 0.5, 0).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from physavatar.constants import NUM_KEYPOINTS, PHYS_PARTS, PHYS_TOKEN_DIM, PHYS_TOKENS_PER_FRAME
from physavatar.physstate.layout import PART_SLICES

TOKEN_SEED = 20250127  # changing it changes every stored token: never do it
ROUND_TRIP_TOL_FP32 = 1e-5
ROUND_TRIP_TOL_FP16 = 2e-3


@lru_cache(maxsize=None)
def part_basis(part: str) -> np.ndarray:
    """Orthonormal columns Q (256, 3n) float64 for one part ("body", "face", "left_hand", "right_hand")."""
    if part not in PART_SLICES:
        raise ValueError(f"unknown physical-state part {part!r}; choose from {PHYS_PARTS}")
    index = PHYS_PARTS.index(part)
    n = PART_SLICES[part].stop - PART_SLICES[part].start
    rng = np.random.default_rng(TOKEN_SEED + index)
    q, r = np.linalg.qr(rng.standard_normal((PHYS_TOKEN_DIM, 3 * n)))
    q = q * np.sign(np.diag(r))[None, :]  # QR is unique only up to column signs: pin them
    q.setflags(write=False)
    return q


def _check_keypoints(kp: np.ndarray) -> np.ndarray:
    kp = np.asarray(kp)
    if kp.ndim != 3 or kp.shape[1:] != (NUM_KEYPOINTS, 3):
        raise ValueError(
            f"keypoints have shape {kp.shape}; expected (F, {NUM_KEYPOINTS}, 3) = x, y, confidence per row"
        )
    return kp.astype(np.float32, copy=False)


def encode_keypoints(kp: np.ndarray) -> np.ndarray:
    """Keypoints (F, 127, 3) in [0, 1] -> physical-state tokens (F, 4, 256) float32."""
    kp = _check_keypoints(kp)
    frames = kp.shape[0]
    visible = kp[..., 2:3] > 0
    centred = np.where(visible, kp - 0.5, np.array([0.0, 0.0, -0.5], np.float32))  # (F, 127, 3)
    tokens = np.empty((frames, PHYS_TOKENS_PER_FRAME, PHYS_TOKEN_DIM), np.float32)
    for t, part in enumerate(PHYS_PARTS):
        v = centred[:, PART_SLICES[part]].reshape(frames, -1)  # (F, 3n)
        tokens[:, t] = (v.astype(np.float64) @ part_basis(part).T).astype(np.float32)
    return tokens


def decode_tokens(tokens: np.ndarray) -> np.ndarray:
    """Physical-state tokens (F, 4, 256) (any float dtype) -> keypoints (F, 127, 3) float32.

    Coordinates and confidences are clipped to [0, 1], so noisy predicted tokens still decode to
    drawable keypoints.
    """
    tokens = np.asarray(tokens)
    if tokens.ndim != 3 or tokens.shape[1:] != (PHYS_TOKENS_PER_FRAME, PHYS_TOKEN_DIM):
        raise ValueError(
            f"tokens have shape {tokens.shape}; expected (F, {PHYS_TOKENS_PER_FRAME}, {PHYS_TOKEN_DIM})"
        )
    frames = tokens.shape[0]
    kp = np.empty((frames, NUM_KEYPOINTS, 3), np.float32)
    for t, part in enumerate(PHYS_PARTS):
        v = tokens[:, t].astype(np.float64) @ part_basis(part)  # (F, 3n)
        kp[:, PART_SLICES[part]] = v.reshape(frames, -1, 3) + 0.5
    return np.clip(kp, 0.0, 1.0)
