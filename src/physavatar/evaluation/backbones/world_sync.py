"""world-SyncNet: a small SyncNet-style audio–mouth network trained on the synthetic world's clips.

No official SyncNet weights run offline here, so Sync-C / Sync-D on world data (docs/world.md) use this
network by default. It is *not* syncnet_python's `S` (whose 224² face crops and 13 M parameters make no sense
for 128² cartoon avatars whose mouth is ≈ 7 px wide): it keeps SyncNetS's interface — `forward_lip` on a
5-frame window, `forward_aud` on the matching 20-step (0.2 s) MFCC window (backbones/mfcc.py), one
embedding per window start — so `SyncBackbone.embed` feeds `metrics.sync.sync_offset_search` unchanged.

Inputs:
- lips: mouth crops (T, 32, 32, 3) uint8 RGB, cut around the clip keypoints' mouth points (face rows
  48–67), side 0.8 × the clip's median face width (from the face keypoints); for videos without keypoints
  the box is placed in the lower face of the face detector's box (`mouth_boxes`).
- audio: MFCCs of int16-scaled 16 kHz audio (as SyncNet), standardised with the training set's per-
  coefficient mean / std (buffers in the state dict).
Embeddings are L2-normalised (64-d), so per-window distances lie in [0, 2]; Sync-C / Sync-D values are on
this network's own scale, comparable only between methods evaluated with the same weights.

File format: safetensors with the state dict and metadata {"format": FORMAT, "config": JSON of
WorldSyncConfig}; the shipped weights are `evaluation/assets/world_syncnet.safetensors` (+ its `.json` card).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy.signal import medfilt

from physavatar.constants import NUM_BODY_KEYPOINTS, SAMPLE_RATE, SAMPLES_PER_FRAME
from physavatar.evaluation.backbones import BackboneUnavailable, weights_not_found
from physavatar.evaluation.backbones.mfcc import mfcc
from physavatar.evaluation.backbones.syncnet import MFCC_PER_FRAME, WINDOW, face_boxes

FORMAT = "physavatar-world-syncnet-v1"
MFCC_WINDOW = WINDOW * MFCC_PER_FRAME  # 20 MFCC steps = 0.2 s = one 5-frame video window
_FACE0 = NUM_BODY_KEYPOINTS  # face row 0 of the clip format
_MOUTH_ROWS = slice(_FACE0 + 48, _FACE0 + 68)  # iBUG 48-67: outer + inner lips
_FACE_ROWS = slice(_FACE0, _FACE0 + 68)
MOUTH_BOX_SCALE = 0.8  # crop side / face width: the mouth (≈ 0.35 face widths) with its surroundings
_C0_FLOOR = -5.0  # log energy floor: digital silence gives log(eps) ≈ −36, far off the speech range


@dataclass
class WorldSyncConfig:
    crop: int = 32  # mouth crop side in pixels
    width: int = 24  # channels of the first conv; ×2, ×4 deeper
    embed_dim: int = 64
    num_mfcc: int = 13


def _block(cin: int, cout: int, pool) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.MaxPool2d(pool)]


class WorldSyncNet(nn.Module):
    """Lip stream (B, 3, 5, S, S) uint8-range RGB -> (B, D); audio stream (B, 1, 13, 20) MFCC -> (B, D)."""

    def __init__(self, config: WorldSyncConfig):
        super().__init__()
        self.config = config
        w, s = config.width, config.crop
        # The 5 frames are stacked as 15 channels (SyncNet's first 3-D conv also spans all 5 frames at once).
        self.lip_cnn = nn.Sequential(*_block(3 * WINDOW, w, 2), *_block(w, 2 * w, 2), *_block(2 * w, 4 * w, 2))
        self.lip_fc = nn.Linear(4 * w * (s // 8) ** 2, config.embed_dim)
        self.aud_cnn = nn.Sequential(*_block(1, w, 1), *_block(w, 2 * w, (1, 2)), *_block(2 * w, 4 * w, 2))
        self.aud_fc = nn.Linear(4 * w * (config.num_mfcc // 2) * (MFCC_WINDOW // 4), config.embed_dim)
        self.register_buffer("mfcc_mean", torch.zeros(config.num_mfcc))
        self.register_buffer("mfcc_std", torch.ones(config.num_mfcc))

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape  # (B, 3, 5, S, S), values 0-255
        x = x.permute(0, 2, 1, 3, 4).reshape(b, t * c, h, w) / 255.0
        # Per-window standardisation: skin and lip colours differ by identity; the motion pattern does not.
        x = (x - x.mean((1, 2, 3), keepdim=True)) / (x.std((1, 2, 3), keepdim=True) + 1e-3)
        return F.normalize(self.lip_fc(self.lip_cnn(x).flatten(1)), dim=-1)

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()  # (B, 1, 13, 20)
        x[:, :, 0] = x[:, :, 0].clamp(min=_C0_FLOOR)
        x = ((x - self.mfcc_mean[:, None]) / self.mfcc_std[:, None]).clamp(-6, 6)
        return F.normalize(self.aud_fc(self.aud_cnn(x).flatten(1)), dim=-1)


def save_world_syncnet(model: WorldSyncNet, path: str | os.PathLike) -> None:
    from safetensors.torch import save

    from physavatar.io.atomic import atomic_write

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    blob = save(state, metadata={"format": FORMAT, "config": json.dumps(asdict(model.config))})
    with atomic_write(path, "wb") as f:
        f.write(blob)


def load_world_syncnet(path: str | os.PathLike) -> WorldSyncNet:
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise weights_not_found("world-SyncNet", path, "re-create them with `python -m "
                                "physavatar.evaluation.backbones.train_world --what sync --data DIR --out FILE`")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
        if meta.get("format") != FORMAT:
            raise ValueError(f"metadata format {meta.get('format')!r}, expected {FORMAT!r}")
        model = WorldSyncNet(WorldSyncConfig(**json.loads(meta["config"])))
        model.load_state_dict(state, strict=True)
    except (SafetensorError, OSError, KeyError, TypeError, ValueError, RuntimeError) as err:
        raise BackboneUnavailable(f"{path}: not a world-SyncNet safetensors file ({err}); re-create it with "
                                  "python -m physavatar.evaluation.backbones.train_world --what sync") from err
    return model.eval()


def mouth_boxes(frames: np.ndarray, keypoints: np.ndarray | None, min_confidence: float = 0.3) -> np.ndarray:
    """(F, 4) square x0, y0, x1, y1 mouth boxes in pixels, centre median-filtered over 5 frames.

    From the keypoints' mouth points (side = MOUTH_BOX_SCALE × the clip's median face width); without usable
    keypoints, from the face detector's box: centre at 69 % of its height, side 0.57 × its width (medians of
    the keypoint box relative to OpenCV's Haar box over 27 detections on world frames; spread ±0.03 in both).
    """
    n, h, w = frames.shape[:3]
    centre = np.full((n, 2), np.nan)
    face_w = np.full(n, np.nan)
    if keypoints is not None:
        kp = np.asarray(keypoints)[:n]
        for t in range(len(kp)):
            mouth, face = kp[t, _MOUTH_ROWS], kp[t, _FACE_ROWS]
            if (mouth[:, 2] >= min_confidence).sum() >= 10 and (face[:, 2] >= min_confidence).sum() >= 20:
                centre[t] = mouth[mouth[:, 2] >= min_confidence, :2].mean(0) * [w, h]
                fx = face[face[:, 2] >= min_confidence, 0] * w
                face_w[t] = fx.max() - fx.min()
        side = MOUTH_BOX_SCALE * np.nanmedian(face_w) if np.isfinite(face_w).any() else np.nan
    if keypoints is None or not np.isfinite(centre).any():
        boxes = face_boxes(frames, None)  # raises SkipVideo when no frame has a face
        centre = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 1] + 0.69 * (boxes[:, 3] - boxes[:, 1])], 1)
        side = 0.57 * float(np.median(boxes[:, 2] - boxes[:, 0]))
    found = np.isfinite(centre[:, 0])
    idx = np.where(found)[0]
    centre = centre[idx[np.abs(np.arange(n)[:, None] - idx[None, :]).argmin(1)]]  # nearest frame with a mouth
    if n >= 5:
        centre = np.stack([medfilt(centre[:, 0], 5), medfilt(centre[:, 1], 5)], 1)
    half = max(float(side), 4.0) / 2
    return np.concatenate([centre - half, centre + half], 1)


def crop_mouths(frames: np.ndarray, boxes: np.ndarray, size: int = 32) -> np.ndarray:
    """(T, H, W, 3) frames + (T, 4) boxes -> (T, size, size, 3) uint8 crops (edge-replicated outside)."""
    out = np.empty((len(frames), size, size, 3), np.uint8)
    for t, (frame, (x0, y0, x1, y1)) in enumerate(zip(frames, boxes)):
        # An affine warp samples the box sub-pixel exactly; a 13-px box cut by int indices would jitter.
        sx, sy = size / (x1 - x0), size / (y1 - y0)
        m = np.array([[sx, 0, -x0 * sx], [0, sy, -y0 * sy]], np.float64)
        out[t] = cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    return out


def audio_mfcc(audio: np.ndarray) -> np.ndarray:
    """(N,) float audio in [−1, 1] at 16 kHz -> (M, 13) float32 MFCCs on SyncNet's int16 scale."""
    return mfcc(np.asarray(audio, np.float64) * 32768.0, SAMPLE_RATE).astype(np.float32)


def num_windows(num_frames: int, num_samples: int) -> int:
    return min(num_frames, num_samples // SAMPLES_PER_FRAME) - WINDOW


def lip_windows(crops: np.ndarray, starts) -> torch.Tensor:
    """(T, S, S, 3) crops -> (B, 3, 5, S, S) float windows starting at `starts`."""
    video = torch.from_numpy(np.ascontiguousarray(crops)).float().permute(3, 0, 1, 2)  # (3, T, S, S)
    return torch.stack([video[:, t : t + WINDOW] for t in starts])


def audio_windows(cc: np.ndarray, starts) -> torch.Tensor:
    """(M, 13) MFCCs -> (B, 1, 13, 20) windows for video window starts `starts`."""
    cc_t = torch.from_numpy(np.ascontiguousarray(cc.T)).float()
    return torch.stack([cc_t[:, t * MFCC_PER_FRAME : t * MFCC_PER_FRAME + MFCC_WINDOW] for t in starts])[:, None]


class WorldSyncBackbone:
    """Frames (+ clip keypoints for the mouth box) + 16 kHz audio -> per-window lip / audio embeddings."""

    def __init__(self, path: str | os.PathLike, batch_size: int = 64):
        self.model = load_world_syncnet(path)
        self.batch_size = batch_size
        self.name = f"world-SyncNet (small audio–mouth net trained on world clips; {path})"

    def embed(self, frames: np.ndarray, audio: np.ndarray, keypoints: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """Lip and audio embeddings (W, 64) each, W = min(frames, audio frames) − 5 windows."""
        return embed_clip(self.model, frames, audio, keypoints, self.batch_size)


@torch.inference_mode()
def embed_clip(model: WorldSyncNet, frames: np.ndarray, audio: np.ndarray, keypoints: np.ndarray | None = None,
               batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(W, D) lip and audio embeddings of every 5-frame window of one video (model in eval mode)."""
    num = num_windows(len(frames), len(audio))
    if num < 1:
        raise ValueError(f"world-SyncNet: need more than {WINDOW} frames with audio, got {len(frames)} frames "
                         f"and {len(audio) / SAMPLE_RATE:.2f} s of audio")
    return embed_lips(model, frames, keypoints, num, batch_size), embed_audio(model, audio, num, batch_size)


@torch.inference_mode()
def embed_lips(model: WorldSyncNet, frames: np.ndarray, keypoints: np.ndarray | None, num: int,
               batch_size: int = 64) -> np.ndarray:
    """(num, D) lip embeddings of the windows starting at frames 0 .. num − 1."""
    crops = crop_mouths(frames, mouth_boxes(frames, keypoints), model.config.crop)
    return torch.cat([model.forward_lip(lip_windows(crops, range(i, min(num, i + batch_size))))
                      for i in range(0, num, batch_size)]).numpy()


@torch.inference_mode()
def embed_audio(model: WorldSyncNet, audio: np.ndarray, num: int, batch_size: int = 64) -> np.ndarray:
    """(num, D) audio embeddings of the 0.2 s windows matching video windows 0 .. num − 1."""
    cc = audio_mfcc(audio)
    return torch.cat([model.forward_aud(audio_windows(cc, range(i, min(num, i + batch_size))))
                      for i in range(0, num, batch_size)]).numpy()
