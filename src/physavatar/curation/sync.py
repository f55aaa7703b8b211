"""Audio–visual sync of a clip with SyncNet (Chung & Zisserman, 2016), only with user-given weights.

The network, its official `syncnet_v2.model` loader, the face crops and the offset search are
`physavatar.evaluation`'s (the same code computes Sync-C / Sync-D for Table 1). Without weights the check
is *skipped* and the manifest says so; nothing is estimated in its place.

A clip is dropped when SyncNet's best offset is further than `max_offset` frames from 0 or its confidence
(Sync-C) is below `min_confidence` (common curation practice for talking-head data: |offset| <= 3,
confidence >= 3).
"""

from __future__ import annotations

import numpy as np

from physavatar.constants import SAMPLE_RATE, SAMPLES_PER_FRAME

SKIPPED = {"status": "skipped", "reason": "no SyncNet weights given (--syncnet-weights PATH)"}


def smooth_boxes(boxes: np.ndarray) -> np.ndarray:
    """syncnet_python's 13-frame median filter of face centre and half-size, applied to a clip's boxes."""
    from scipy.signal import medfilt

    boxes = np.asarray(boxes, np.float64)
    n = len(boxes)
    kernel = min(13, n - (1 - n % 2))
    if kernel < 3:
        return boxes
    s = medfilt(np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]) / 2, kernel)
    cx = medfilt((boxes[:, 0] + boxes[:, 2]) / 2, kernel)
    cy = medfilt((boxes[:, 1] + boxes[:, 3]) / 2, kernel)
    return np.stack([cx - s, cy - s, cx + s, cy + s], axis=1)


class SyncChecker:
    """Collect SyncNet face crops frame by frame while a clip is written, then score the clip."""

    def __init__(self, weights: str, min_confidence: float, max_offset: int):
        from physavatar.evaluation.backbones.syncnet import load_syncnet

        self.model = load_syncnet(weights)
        self.weights = str(weights)
        self.min_confidence, self.max_offset = float(min_confidence), int(max_offset)

    @staticmethod
    def crop(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
        """One (224, 224, 3) RGB SyncNet crop (box already smoothed with `smooth_boxes`)."""
        from physavatar.evaluation.backbones.syncnet import crop_faces

        return crop_faces(frame[None], np.asarray(box, np.float64)[None])[0]

    def score(self, crops: np.ndarray, audio: np.ndarray, batch_size: int = 20, stride: int = 1) -> dict:
        """SyncNet offset / confidence / distance of (T, 224, 224, 3) crops and their 16 kHz audio.

        stride > 1 embeds the lips of every stride-th window only (the costly 3-D conv; audio is embedded
        everywhere) and averages the offset search over those windows: same estimator, fewer samples.
        """
        import torch

        from physavatar.evaluation.backbones.mfcc import mfcc
        from physavatar.evaluation.backbones.syncnet import MFCC_PER_FRAME, WINDOW

        num = min(len(crops), len(audio) // SAMPLES_PER_FRAME) - WINDOW
        if num < 1:
            return {"status": "skipped", "reason": f"clip shorter than SyncNet's {WINDOW}-frame window"}
        video = torch.from_numpy(np.ascontiguousarray(crops[..., ::-1])).float().permute(3, 0, 1, 2)  # BGR, (3,T,H,W)
        cc = torch.from_numpy(mfcc(np.asarray(audio, np.float64) * 32768.0, SAMPLE_RATE).T).float()[None, None]
        lips = list(range(0, num, max(1, int(stride))))
        v_out, a_out = [], []
        with torch.inference_mode():
            for i in range(0, len(lips), batch_size):
                windows = [video[:, t:t + WINDOW] for t in lips[i:i + batch_size]]
                v_out.append(self.model.forward_lip(torch.stack(windows)))
            for i in range(0, num, batch_size):
                a_out.append(self.model.forward_aud(torch.cat(
                    [cc[..., t * MFCC_PER_FRAME:t * MFCC_PER_FRAME + 20] for t in range(i, min(num, i + batch_size))])))
        res = offset_search(torch.cat(v_out).numpy(), np.asarray(lips), torch.cat(a_out).numpy())
        ok = abs(res.offset) <= self.max_offset and res.confidence >= self.min_confidence
        out = {"status": "measured", "offset": res.offset, "confidence": round(res.confidence, 4),
               "min_dist": round(res.min_dist, 4), "lip_windows": len(lips), "kept": bool(ok)}
        if not ok:
            out["reason"] = (f"poor sync: offset {res.offset} frames (max ±{self.max_offset}), confidence "
                             f"{res.confidence:.2f} (min {self.min_confidence})")
        return out


def offset_search(video_emb: np.ndarray, rows: np.ndarray, audio_emb: np.ndarray):
    """`sync_offset_search` when lip embeddings exist only at window indices `rows` (all of them: identical)."""
    from physavatar.evaluation.metrics.sync import _PAIRWISE_EPS, DEFAULT_VSHIFT, SyncResult, sync_offset_search

    if len(rows) == len(audio_emb) and np.array_equal(rows, np.arange(len(audio_emb))):
        return sync_offset_search(video_emb, audio_emb)
    vshift, a = DEFAULT_VSHIFT, np.asarray(audio_emb, np.float64)
    pad = np.zeros((vshift, a.shape[1]))
    a_pad = np.concatenate([pad, a, pad])
    idx = np.asarray(rows)[:, None] + np.arange(2 * vshift + 1)[None, :]
    dists = np.linalg.norm(np.asarray(video_emb, np.float64)[:, None, :] - a_pad[idx] + _PAIRWISE_EPS, axis=-1)
    mean = dists.mean(axis=0)
    k = int(np.argmin(mean))
    return SyncResult(offset=vshift - k, confidence=float(np.median(mean) - mean[k]), min_dist=float(mean[k]),
                      mean_dists=mean)
