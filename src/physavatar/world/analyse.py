"""Measurements on rendered world frames (not on the ground truth): is the mouth open, how wide?

`mouth_opening_area` counts the pixels inside the lips that show the mouth's dark interior or teeth, so
it works on decoded video (H.264 colours are tolerated) and can check a generator's output against the
world's ground truth. Areas are in squared head units, so sizes and framings compare.
"""

from __future__ import annotations

import numpy as np

from physavatar.physstate.layout import FACE

MOUTH_INSIDE = np.array([35, 5, 12], np.float32)  # renderer's colour of the open mouth
TEETH = np.array([240, 238, 230], np.float32)


def lips_boxes(kp: np.ndarray, size: tuple[int, int], unit: float, pad: float = 0.0) -> np.ndarray:
    """Per-frame pixel box (F, 4) of x0, y0, x1, y1 around the outer lips of keypoints (F, 127, 3) in frames of
    size (H, W), widened by `pad` head units on every side; x1 / y1 are exclusive."""
    h, w = size
    lips = np.asarray(kp)[:, FACE.start + 48 : FACE.start + 60, :2] * [w, h]
    margin = pad * unit * h
    low = np.floor(lips.min(axis=1) - margin).astype(int).clip(0)
    high = np.ceil(lips.max(axis=1) + margin).astype(int) + 1
    return np.concatenate([low, high], axis=1)


def mouth_opening_area(frames: np.ndarray, kp: np.ndarray, unit: float, tol: float = 30.0,
                       pad: float = 0.0) -> np.ndarray:
    """Open-mouth area (F,) in head units^2 of frames (F, H, W, 3) uint8, located by keypoints (F, 127, 3).

    pad: widen the lips' box by this many head units on every side, for frames whose mouth may sit a little
    away from the keypoints (a generator's output measured with the ground truth's keypoints).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or len(frames) != len(kp):
        raise ValueError(
            f"frames {frames.shape} and keypoints {np.shape(kp)} must be (F, H, W, 3) and (F, 127, 3)"
        )
    f, h, w = frames.shape[:3]
    out = np.zeros(f, np.float32)
    for t, (x0, y0, x1, y1) in enumerate(lips_boxes(kp, (h, w), unit, pad)):
        crop = frames[t, y0:y1, x0:x1].astype(np.float32)
        if crop.size == 0:
            continue
        near = lambda c: np.linalg.norm(crop - c, axis=-1) < tol  # noqa: E731
        out[t] = (near(MOUTH_INSIDE) | near(TEETH)).sum()
    return out / (unit * h) ** 2
