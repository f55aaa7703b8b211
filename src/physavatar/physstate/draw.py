"""Pose visualisation (paper Figure 4): draw keypoints, or decoded physical-state tokens, as a skeleton.

Body limbs are coloured per limb (OpenPose-like), the face is drawn as thin white contours, each finger
of a hand has its own colour. Keypoints whose confidence is below `min_conf` are not drawn, nor are the
edges that touch them.
"""

from __future__ import annotations

import cv2
import numpy as np

from physavatar.constants import NUM_KEYPOINTS
from physavatar.physstate.layout import BODY_EDGES, FACE, FACE_EDGES, HAND_EDGES, LEFT_HAND, RIGHT_HAND
from physavatar.physstate.tokens import decode_tokens

_SHIFT = 4  # sub-pixel bits for cv2 drawing: smooth lines at small sizes
_BODY_COLOURS = (
    (255, 0, 85), (255, 0, 170), (170, 0, 255), (85, 0, 255),
    (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 170, 255), (0, 85, 255),
    (0, 255, 255), (85, 255, 0), (0, 255, 0), (0, 0, 255),
)  # fmt: skip  RGB, one per BODY_EDGES entry
_FINGER_COLOURS = ((255, 60, 60), (255, 200, 40), (60, 220, 60), (40, 160, 255), (200, 80, 255))


def _pix(xy: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    return np.round(xy * np.array([w, h]) * (1 << _SHIFT)).astype(np.int32)


def draw_skeleton(
    kp: np.ndarray,
    size: int | tuple[int, int] = 256,
    background: np.ndarray | None = None,
    min_conf: float = 0.3,
) -> np.ndarray:
    """One frame of keypoints (127, 3) -> uint8 RGB image (H, W, 3); black background unless given."""
    kp = np.asarray(kp, np.float32)
    if kp.shape != (NUM_KEYPOINTS, 3):
        raise ValueError(f"keypoints have shape {kp.shape}; expected ({NUM_KEYPOINTS}, 3) for one frame")
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if background is not None:
        if background.shape[:2] != hw:
            raise ValueError(f"background is {background.shape[:2]}, skeleton size is {hw}: make them equal")
        img = np.ascontiguousarray(background, dtype=np.uint8).copy()
    else:
        img = np.zeros((*hw, 3), np.uint8)
    s = max(hw) / 256.0
    limb, thin = max(1, round(3 * s)), max(1, round(1 * s))
    pts = _pix(kp[:, :2], hw)
    ok = kp[:, 2] >= min_conf

    def line(a: int, b: int, colour, width: int) -> None:
        if ok[a] and ok[b]:
            cv2.line(img, tuple(pts[a]), tuple(pts[b]), colour, width, cv2.LINE_AA, _SHIFT)

    for (a, b), colour in zip(BODY_EDGES, _BODY_COLOURS):
        line(a, b, colour, limb)
    for a, b in FACE_EDGES:
        line(a + FACE.start, b + FACE.start, (235, 235, 235), thin)
    for hand in (LEFT_HAND, RIGHT_HAND):
        for i, (a, b) in enumerate(HAND_EDGES):
            line(a + hand.start, b + hand.start, _FINGER_COLOURS[i // 4], thin + (s >= 1.5))
    radius = max(1, round(2 * s)) << _SHIFT
    for i in np.flatnonzero(ok[: FACE.start]):  # body joints as dots
        cv2.circle(img, tuple(pts[i]), radius, (255, 255, 255), -1, cv2.LINE_AA, _SHIFT)
    return img


def skeleton_video(
    kp: np.ndarray | None = None,
    tokens: np.ndarray | None = None,
    size: int | tuple[int, int] = 256,
    frames: np.ndarray | None = None,
    min_conf: float = 0.3,
) -> np.ndarray:
    """Skeleton frames (F, H, W, 3) uint8 from keypoints (F, 127, 3) or physical-state tokens (F, 4, 256).

    With `frames` (F, H, W, 3) the skeleton is drawn over the video instead of black.
    """
    if (kp is None) == (tokens is None):
        raise ValueError("give exactly one of kp (F, 127, 3) or tokens (F, 4, 256)")
    if tokens is not None:
        kp = decode_tokens(tokens)
    kp = np.asarray(kp)
    if kp.ndim != 3:
        raise ValueError(f"keypoints have shape {kp.shape}; expected (F, {NUM_KEYPOINTS}, 3)")
    if frames is not None:
        if len(frames) != len(kp):
            raise ValueError(f"{len(frames)} video frames but {len(kp)} keypoint frames: they must match")
        size = frames.shape[1:3]
    return np.stack(
        [
            draw_skeleton(kp[i], size, None if frames is None else frames[i], min_conf)
            for i in range(len(kp))
        ]
    )
