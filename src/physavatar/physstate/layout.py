"""The physical-state keypoint layout (paper, Figure S2): 17 body + 68 face + 2 x 21 hand = 127 rows.

Rows of a keypoint array `kp (F, 127, 3)` hold `x, y, confidence`, with x, y in [0, 1] as fractions of
the frame width / height. "left" and "right" are the *subject's* sides (COCO / iBUG convention), so for a
person facing the camera the left shoulder appears on the image's right.

    rows   0-16   body        COCO-17 order
    rows  17-84   face        iBUG-68 order (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67)
    rows  85-105  left hand   wrist, then thumb, fore, middle, ring, pinky finger, each root -> tip
    rows 106-126  right hand  same order
"""

from __future__ import annotations

from physavatar.constants import (
    NUM_BODY_KEYPOINTS,
    NUM_FACE_KEYPOINTS,
    NUM_HAND_KEYPOINTS,
    NUM_KEYPOINTS,
    PHYS_PARTS,
)

BODY_NAMES: tuple[str, ...] = (
    "nose", "left eye", "right eye", "left ear", "right ear", "left shoulder", "right shoulder",
    "left elbow", "right elbow", "left wrist", "right wrist", "left hip", "right hip", "left knee",
    "right knee", "left ankle", "right ankle",
)  # fmt: skip

FACE_NAMES: tuple[str, ...] = (
    "right cheekbone 1", "right cheekbone 2", "right cheek 1", "right cheek 2", "right cheek 3",
    "right cheek 4", "right cheek 5", "right chin", "chin center", "left chin", "left cheek 5",
    "left cheek 4", "left cheek 3", "left cheek 2", "left cheek 1", "left cheekbone 2", "left cheekbone 1",
    "right eyebrow 1", "right eyebrow 2", "right eyebrow 3", "right eyebrow 4", "right eyebrow 5",
    "left eyebrow 1", "left eyebrow 2", "left eyebrow 3", "left eyebrow 4", "left eyebrow 5",
    "nasal bridge 1", "nasal bridge 2", "nasal bridge 3", "nasal bridge 4",
    "right nasal wing 1", "right nasal wing 2", "nasal wing center", "left nasal wing 1", "left nasal wing 2",
    "right eye eye corner 1", "right eye upper eyelid 1", "right eye upper eyelid 2",
    "right eye eye corner 2", "right eye lower eyelid 2", "right eye lower eyelid 1",
    "left eye eye corner 1", "left eye upper eyelid 1", "left eye upper eyelid 2",
    "left eye eye corner 2", "left eye lower eyelid 2", "left eye lower eyelid 1",
    "right mouth corner", "upper lip outer edge 1", "upper lip outer edge 2", "upper lip outer edge 3",
    "upper lip outer edge 4", "upper lip outer edge 5", "left mouth corner", "lower lip outer edge 5",
    "lower lip outer edge 4", "lower lip outer edge 3", "lower lip outer edge 2", "lower lip outer edge 1",
    "upper lip inter edge 1", "upper lip inter edge 2", "upper lip inter edge 3", "upper lip inter edge 4",
    "upper lip inter edge 5", "lower lip inter edge 3", "lower lip inter edge 2", "lower lip inter edge 1",
)  # fmt: skip

HAND_NAMES: tuple[str, ...] = (
    "wrist", "thumb root", "thumb's third knuckle", "thumb's second knuckle", "thumb's first knuckle",
    "forefinger's root", "forefinger's third knuckle", "forefinger's second knuckle",
    "forefinger's first knuckle", "middle finger's root", "middle finger's third knuckle",
    "middle finger's second knuckle", "middle finger's first knuckle", "ring finger's root",
    "ring finger's third knuckle", "ring finger's second knuckle", "ring finger's first knuckle",
    "pinky finger's root", "pinky finger's third knuckle", "pinky finger's second knuckle",
    "pinky finger's first knuckle",
)  # fmt: skip

assert len(BODY_NAMES) == NUM_BODY_KEYPOINTS
assert len(FACE_NAMES) == NUM_FACE_KEYPOINTS
assert len(HAND_NAMES) == NUM_HAND_KEYPOINTS

# Row ranges of each part in the 127-row array, in PHYS_PARTS order (= token order).
BODY = slice(0, NUM_BODY_KEYPOINTS)
FACE = slice(BODY.stop, BODY.stop + NUM_FACE_KEYPOINTS)
MOUTH = slice(FACE.start + 48, FACE.start + 68)  # the lips, iBUG 48-67
LEFT_HAND = slice(FACE.stop, FACE.stop + NUM_HAND_KEYPOINTS)
RIGHT_HAND = slice(LEFT_HAND.stop, LEFT_HAND.stop + NUM_HAND_KEYPOINTS)
PART_SLICES: dict[str, slice] = dict(zip(PHYS_PARTS, (BODY, FACE, LEFT_HAND, RIGHT_HAND)))
assert RIGHT_HAND.stop == NUM_KEYPOINTS

KEYPOINT_NAMES: tuple[str, ...] = (
    tuple(f"body: {n}" for n in BODY_NAMES)
    + tuple(f"face: {n}" for n in FACE_NAMES)
    + tuple(f"left hand: {n}" for n in HAND_NAMES)
    + tuple(f"right hand: {n}" for n in HAND_NAMES)
)

# Body indices by name, for readable code elsewhere (B["left wrist"] == 9).
B = {name: i for i, name in enumerate(BODY_NAMES)}

# Skeleton edges, as index pairs *within* each part.
BODY_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (1, 3), (2, 4),  # head
    (5, 6), (5, 11), (6, 12), (11, 12),  # torso
    (5, 7), (7, 9), (6, 8), (8, 10),  # arms
    (11, 13), (13, 15), (12, 14), (14, 16),  # legs
)  # fmt: skip


def _chain(start: int, stop: int, closed: bool = False) -> tuple[tuple[int, int], ...]:
    edges = tuple((i, i + 1) for i in range(start, stop - 1))
    return edges + ((stop - 1, start),) if closed else edges


FACE_EDGES: tuple[tuple[int, int], ...] = (
    _chain(0, 17)  # jaw
    + _chain(17, 22) + _chain(22, 27)  # brows
    + _chain(27, 31) + _chain(31, 36) + ((30, 33),)  # nose bridge, nostrils
    + _chain(36, 42, closed=True) + _chain(42, 48, closed=True)  # eyes
    + _chain(48, 60, closed=True) + _chain(60, 68, closed=True)  # outer and inner lips
)  # fmt: skip

HAND_EDGES: tuple[tuple[int, int], ...] = tuple(
    edge for finger in range(5) for edge in ((0, 1 + 4 * finger),) + _chain(1 + 4 * finger, 5 + 4 * finger)
)

# All edges as pairs of rows of the 127-row array.
EDGES: tuple[tuple[int, int], ...] = (
    tuple((a + BODY.start, b + BODY.start) for a, b in BODY_EDGES)
    + tuple((a + FACE.start, b + FACE.start) for a, b in FACE_EDGES)
    + tuple((a + LEFT_HAND.start, b + LEFT_HAND.start) for a, b in HAND_EDGES)
    + tuple((a + RIGHT_HAND.start, b + RIGHT_HAND.start) for a, b in HAND_EDGES)
)


def keypoint_boxes(kp, rows: slice = FACE, pad: float = 0.15):
    """Per-frame box (F, 4) of x0, y0, x1, y1 in [0, 1] frame units around the keypoints `rows` of (F, 127, 3)
    (x, y in [0, 1]), widened on every side by `pad` times the box's height (for the face: the chin, the hair)."""
    import numpy as np

    points = np.asarray(kp, np.float32)[:, rows, :2]
    low, high = points.min(axis=1), points.max(axis=1)
    margin = pad * (high[:, 1:2] - low[:, 1:2])
    return np.concatenate([(low - margin).clip(0, 1), (high + margin).clip(0, 1)], axis=1)


def face_boxes(kp, pad: float = 0.15):
    return keypoint_boxes(kp, FACE, pad)


def box_mask(boxes, size: tuple[int, int]):
    """(F, H, W) uint8: 1 on the pixels of a grid of `size` (H, W) that each frame's box touches."""
    import numpy as np

    h, w = size
    mask = np.zeros((len(boxes), h, w), np.uint8)
    for t, (x0, y0, x1, y1) in enumerate(boxes):
        mask[t, int(y0 * h) : int(np.ceil(y1 * h)), int(x0 * w) : int(np.ceil(x1 * w))] = 1
    return mask


def face_mask(kp, size: tuple[int, int]):
    return box_mask(face_boxes(kp), size)
