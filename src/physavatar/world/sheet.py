"""Contact sheets: a clip's reference + sampled frames, the skeleton decoded from its tokens, and curves.

Row 1: reference image, then `columns` evenly spaced frames. Row 2: the pose visualisation of the same
frames drawn from the physical-state tokens (decode_tokens -> draw_skeleton, paper Figure 4). Strip at
the bottom: speech envelope (grey), mouth aperture (red), hand lift (blue) over the whole clip, with
ticks at the sampled frames.
"""

from __future__ import annotations

import cv2
import numpy as np

from physavatar.physstate.draw import skeleton_video


def _label(img: np.ndarray, text: str, org: tuple[int, int], colour) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, img.shape[0] / 320, colour, 1, cv2.LINE_AA)


def _strip(curves: list[tuple[np.ndarray, tuple[int, int, int]]], width: int, height: int, ticks) -> np.ndarray:
    img = np.full((height, width, 3), 250, np.uint8)
    n = len(curves[0][0])
    xs = np.linspace(2, width - 3, n)
    for t in ticks:
        cv2.line(img, (int(xs[t]), 0), (int(xs[t]), height), (210, 210, 210), 1)
    for values, colour in curves:
        v = np.asarray(values, np.float32)
        v = v / (v.max() + 1e-9)
        pts = np.stack([xs, height - 3 - v * (height - 6)], 1)
        cv2.polylines(img, [np.round(pts * 16).astype(np.int32)], False, colour, 1, cv2.LINE_AA, 4)
    return img


def contact_sheet(clip, columns: int = 8) -> np.ndarray:
    """A (rows, width, 3) uint8 RGB overview of a `world.clip.Clip`."""
    from physavatar.world.body import mouth_aperture

    f = len(clip.frames)
    idx = np.linspace(0, f - 1, min(columns, f)).round().astype(int)
    size = clip.frames.shape[1]
    ref = clip.reference.copy()
    _label(ref, "ref", (4, 14 * size // 128), (255, 255, 255))
    top = np.concatenate([ref] + [clip.frames[i] for i in idx], 1)
    skel = skeleton_video(tokens=clip.tokens[idx], size=size)
    blank = np.zeros_like(clip.reference)
    _label(blank, "tokens", (4, size // 2), (200, 200, 200))
    mid = np.concatenate([blank] + list(skel), 1)
    curves = [
        (clip.features.rms, (120, 120, 120)),
        (mouth_aperture(clip.keypoints), (220, 30, 30)),
        (clip.motion.lift.max(axis=1), (30, 80, 220)),
    ]
    width = top.shape[1]
    strip = np.full((max(40, size // 3), width, 3), 250, np.uint8)
    strip[:, size:] = _strip(curves, width - size, strip.shape[0], idx)
    return np.concatenate([top, mid, strip], 0)
