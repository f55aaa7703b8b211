"""A stable upper-body square around the speaker: one crop size per clip, a smoothed centre, no jitter.

From the face track's per-frame boxes (source pixels) the square side is `framing_heights` × the median
face height (the upper-body framing of `physavatar.io.image.fit_image`: face centre at `face_at` of the
crop height from the top), capped at the frame's short side. The centre is low-passed with a Gaussian of
`smooth_sec`; when the smoothed centre moves less than 5 % of the side over the whole clip, the crop is
held still (a locked-off camera). The square is shifted, never shrunk, to stay inside the frame.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d


def crop_track(face_boxes: np.ndarray, frame_hw: tuple[int, int], *, framing_heights: float = 3.5,
               face_at: float = 0.30, smooth_frames: float = 12.5) -> tuple[np.ndarray, float, dict]:
    """(F, 2) top-left corners (x, y) and the square side (source px) for F face boxes; plus measurements."""
    boxes = np.asarray(face_boxes, np.float64)
    h, w = frame_hw
    face_h = float(np.median(boxes[:, 3] - boxes[:, 1]))
    side = float(min(framing_heights * face_h, h, w))
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    top = (boxes[:, 1] + boxes[:, 3]) / 2 - face_at * side
    if len(boxes) > 1 and smooth_frames > 0:
        cx = gaussian_filter1d(cx, smooth_frames, mode="nearest")
        top = gaussian_filter1d(top, smooth_frames, mode="nearest")
    still = bool(np.ptp(cx) < 0.05 * side and np.ptp(top) < 0.05 * side)
    if still:
        cx, top = np.full_like(cx, np.median(cx)), np.full_like(top, np.median(top))
    left = np.clip(cx - side / 2, 0, w - side)
    top = np.clip(top, 0, h - side)
    corners = np.stack([left, top], axis=1)
    step = np.abs(np.diff(corners, axis=0)).max() if len(corners) > 1 else 0.0
    info = {"side_px": round(side, 1), "still": still, "max_step_px": round(float(step), 3),
            "face_height_px": round(face_h, 1)}
    return corners, side, info


def apply_crop(frame: np.ndarray, corner: np.ndarray, side: float, size: int) -> np.ndarray:
    """Sub-pixel crop of a (side × side) square at `corner` resized to size² (one affine warp, no rounding jitter)."""
    import cv2

    s = size / side
    m = np.array([[s, 0, -corner[0] * s], [0, s, -corner[1] * s]], np.float64)
    if s < 0.5:  # strong downscale: pre-blur against aliasing (warpAffine samples, it does not average)
        frame = cv2.GaussianBlur(frame, (0, 0), 0.5 / s)
    return cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
