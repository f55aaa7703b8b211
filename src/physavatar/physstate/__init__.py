"""Physical state: the 127-keypoint layout (Figure S2), its 4 x 256 token code, and a skeleton drawer."""

from physavatar.physstate.draw import draw_skeleton, skeleton_video
from physavatar.physstate.layout import (
    BODY_EDGES,
    BODY_NAMES,
    EDGES,
    FACE_EDGES,
    FACE_NAMES,
    HAND_EDGES,
    HAND_NAMES,
    KEYPOINT_NAMES,
    PART_SLICES,
)
from physavatar.physstate.tokens import decode_tokens, encode_keypoints, part_basis

__all__ = [
    "BODY_EDGES", "BODY_NAMES", "EDGES", "FACE_EDGES", "FACE_NAMES", "HAND_EDGES", "HAND_NAMES",
    "KEYPOINT_NAMES", "PART_SLICES", "decode_tokens", "draw_skeleton", "encode_keypoints", "part_basis",
    "skeleton_video",
]  # fmt: skip
