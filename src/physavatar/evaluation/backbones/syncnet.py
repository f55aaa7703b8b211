"""SyncNet (Chung & Zisserman, 2016) for Sync-C / Sync-D, loading the official syncnet_python checkpoint.

`syncnet_v2.model` is a torch-saved state dict of syncnet_python's `S` model (modules netcnnaud, netfcaud,
netcnnlip, netfclip). No SyncNet weights ship in any package here: the user gives the path. The pipeline
follows syncnet_python: face crops as in run_pipeline's `crop_video` (box centre and half-size median-
filtered over 13 frames, crop scale 0.4, padded with grey 110, resized to 224²), BGR 0-255 floats in
5-frame windows; MFCCs of int16-scaled 16 kHz audio in 20-step (0.2 s) windows, 4 MFCC steps per frame.
Face boxes come from the caller (clip keypoints or a face detector); the official S3FD detector is not
used, so crops can differ slightly from the reference pipeline's.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
from scipy.signal import medfilt

from physavatar.constants import NUM_BODY_KEYPOINTS, NUM_FACE_KEYPOINTS, SAMPLE_RATE, SAMPLES_PER_FRAME
from physavatar.evaluation.backbones import BackboneUnavailable, SkipVideo, weights_not_found
from physavatar.evaluation.backbones.mfcc import mfcc

WINDOW = 5  # video frames per SyncNet window (0.2 s at 25 fps)
MFCC_PER_FRAME = 4  # 100 MFCC steps/s ÷ 25 fps
CROP_SIZE = 224
CROP_SCALE = 0.4
_FACE_ROWS = slice(NUM_BODY_KEYPOINTS, NUM_BODY_KEYPOINTS + NUM_FACE_KEYPOINTS)


def _bn_relu2(c):
    return [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]


def _bn_relu3(c):
    return [nn.BatchNorm3d(c), nn.ReLU(inplace=True)]


class SyncNetS(nn.Module):
    """syncnet_python's `S`: the same module names and indices, so the official state dict loads strictly."""

    def __init__(self, embed_dim: int = 1024):
        super().__init__()
        self.netcnnaud = nn.Sequential(  # (B, 1, 13, 20) MFCC window -> (B, 512, 1, 1)
            nn.Conv2d(1, 64, 3, 1, 1), *_bn_relu2(64), nn.MaxPool2d(1, 1),
            nn.Conv2d(64, 192, 3, 1, 1), *_bn_relu2(192), nn.MaxPool2d(3, (1, 2)),
            nn.Conv2d(192, 384, 3, padding=1), *_bn_relu2(384),
            nn.Conv2d(384, 256, 3, padding=1), *_bn_relu2(256),
            nn.Conv2d(256, 256, 3, padding=1), *_bn_relu2(256), nn.MaxPool2d(3, 2),
            nn.Conv2d(256, 512, (5, 4)), nn.BatchNorm2d(512), nn.ReLU(),
        )
        self.netfcaud = nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, embed_dim))
        self.netfclip = nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, embed_dim))
        self.netcnnlip = nn.Sequential(  # (B, 3, 5, 224, 224) BGR 0-255 -> (B, 512, 1, 1, 1)
            nn.Conv3d(3, 96, (5, 7, 7), (1, 2, 2)), *_bn_relu3(96), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            nn.Conv3d(96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)), *_bn_relu3(256),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), *_bn_relu3(256),
            nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), *_bn_relu3(256),
            nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), *_bn_relu3(256), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            nn.Conv3d(256, 512, (1, 6, 6)), *_bn_relu3(512),
        )

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        return self.netfcaud(self.netcnnaud(x).flatten(1))

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        return self.netfclip(self.netcnnlip(x).flatten(1))


def load_syncnet(path: str | os.PathLike) -> SyncNetS:
    """Load an official-format SyncNet state dict (torch.load with weights_only=True: tensors only)."""
    path = Path(path)
    if not path.is_file():
        raise weights_not_found("SyncNet", path, "give --syncnet-weights PATH to syncnet_python's syncnet_v2.model "
                                "(download it where you have internet; none ships here)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a pickle with code objects, or not a torch file at all
        raise ValueError(f"{path}: not a SyncNet state dict readable with weights_only=True ({err}); give "
                         "syncnet_python's syncnet_v2.model") from err
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict of syncnet_python's S model, got {type(state).__name__}")
    model = SyncNetS()
    expected, got = set(model.state_dict()), set(state)
    if expected != got:
        raise ValueError(f"{path}: not a syncnet_python S state dict (missing {sorted(expected - got)[:4]}, "
                         f"unexpected {sorted(got - expected)[:4]})")
    model.load_state_dict(state, strict=True)
    return model.eval()


def face_boxes(frames: np.ndarray, keypoints: np.ndarray | None, min_confidence: float = 0.3) -> np.ndarray:
    """(F, 4) x0, y0, x1, y1 face boxes in pixels: from the clip's face keypoints, else OpenCV's detector.

    Frames without a face take the box of the nearest frame that has one (SyncNet needs every frame).
    """
    n, h, w = frames.shape[:3]
    boxes = np.full((n, 4), np.nan)
    if keypoints is not None:
        face = keypoints[:n, _FACE_ROWS]
        for t in range(len(face)):
            ok = face[t, :, 2] >= min_confidence
            if ok.sum() >= 10:
                xy = face[t, ok, :2] * [w, h]
                boxes[t] = [*xy.min(0), *xy.max(0)]
    if np.isnan(boxes).all():
        from physavatar.io import detect_face

        for t in range(n):
            box = detect_face(frames[t])
            if box is not None:
                boxes[t] = box
    found = ~np.isnan(boxes[:, 0])
    if not found.any():
        raise SkipVideo("no face found in any frame")
    idx = np.where(found)[0]
    nearest = idx[np.abs(np.arange(n)[:, None] - idx[None, :]).argmin(1)]
    return boxes[nearest]


def crop_faces(frames: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """syncnet_python's crop_video: (T, H, W, 3) frames + (T, 4) x0, y0, x1, y1 boxes -> (T, 224, 224, 3)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.shape != (len(frames), 4):
        raise ValueError(f"SyncNet: need one face box per frame, got {boxes.shape} for {len(frames)} frames")
    kernel = min(13, len(frames) - (1 - len(frames) % 2))  # medfilt needs an odd kernel ≤ length
    s = np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]) / 2
    cy, cx = (boxes[:, 1] + boxes[:, 3]) / 2, (boxes[:, 0] + boxes[:, 2]) / 2
    if kernel >= 3:
        s, cx, cy = medfilt(s, kernel), medfilt(cx, kernel), medfilt(cy, kernel)
    out = np.empty((len(frames), CROP_SIZE, CROP_SIZE, 3), np.uint8)
    for t, frame in enumerate(frames):
        bs = max(float(s[t]), 1.0)
        bsi = int(bs * (1 + 2 * CROP_SCALE))
        padded = np.pad(frame, ((bsi, bsi), (bsi, bsi), (0, 0)), constant_values=110)
        my, mx = cy[t] + bsi, cx[t] + bsi
        face = padded[int(my - bs) : int(my + bs * (1 + 2 * CROP_SCALE)),
                      int(mx - bs * (1 + CROP_SCALE)) : int(mx + bs * (1 + CROP_SCALE))]
        out[t] = cv2.resize(face, (CROP_SIZE, CROP_SIZE))
    return out


class SyncNetBackbone:
    """Full frames (+ clip keypoints for the face box) + 16 kHz audio -> per-window lip / audio embeddings."""

    def __init__(self, path: str | os.PathLike | None, batch_size: int = 20):
        if path is None:
            raise BackboneUnavailable("SyncNet weights not found at (none given); give --syncnet-weights PATH to "
                                      "syncnet_python's syncnet_v2.model")
        self.model = load_syncnet(path)
        self.batch_size = batch_size
        self.name = f"SyncNet (syncnet_python S, {path})"

    @torch.inference_mode()
    def embed(self, frames: np.ndarray, audio: np.ndarray, keypoints: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """Lip and audio embeddings (W, 1024) each, W = min(frames, audio frames) − 5 windows."""
        # RGB -> BGR: the reference pipeline read its crops with cv2.imread
        crops = crop_faces(frames, face_boxes(frames, keypoints))[..., ::-1]
        video = torch.from_numpy(np.ascontiguousarray(crops)).float().permute(3, 0, 1, 2)  # (3, T, 224, 224)
        cc = mfcc(np.asarray(audio, np.float64) * 32768.0, SAMPLE_RATE).T  # (13, M), int16 scale
        mfcc_t = torch.from_numpy(cc).float()[None, None]  # (1, 1, 13, M)
        num = min(len(frames), len(audio) // SAMPLES_PER_FRAME) - WINDOW
        if num < 1:
            raise ValueError(f"SyncNet: need more than {WINDOW} frames with audio, got {len(frames)} frames and "
                             f"{len(audio) / SAMPLE_RATE:.2f} s of audio")
        v_out, a_out = [], []
        for i in range(0, num, self.batch_size):
            idx = range(i, min(num, i + self.batch_size))
            v_out.append(self.model.forward_lip(torch.stack([video[:, t : t + WINDOW] for t in idx])))
            a_out.append(self.model.forward_aud(
                torch.cat([mfcc_t[..., t * MFCC_PER_FRAME : t * MFCC_PER_FRAME + 20] for t in idx])))
        return torch.cat(v_out).numpy(), torch.cat(a_out).numpy()
