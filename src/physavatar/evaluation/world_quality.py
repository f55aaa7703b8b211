"""How close a generated world video is to the world's ground-truth rendering of the same speech.

The synthetic world knows the truth: `world.clip.drive_avatar(identity, wav)` renders what the identity does
for that audio, with its keypoints. These measures compare a generator's frames (and its predicted physical
state) with that rendering; benchmarks/bench_demo.py reports them for the shipped demo model.

- lip sync: the mouth's opening over time, measured on the pixels (the world's own analyser counts the exact
  mouth-interior colour; `mouth_darkness` follows an opening through a blurry decoder), correlated with the
  ground truth's; the lag of best correlation is the audio-video offset (positive: video late).
- silence: how open the mouth is in the audio's pauses, relative to how open it is while speaking.
- identity: per-frame similarity to the reference image (colour-histogram correlation and PSNR).
- motion: speed statistics of the hands and head keypoints, and the pixels' frame-to-frame change.
- hands: whether the video draws a hand where the truth raises one (skin colour in that hand's box).
"""

from __future__ import annotations

import numpy as np

from physavatar.constants import SAMPLES_PER_FRAME
from physavatar.physstate.layout import BODY

MOUTH_PAD = 0.35  # head units of slack around the lips' box (a generated head is not exactly where the truth's is)
DARK_PAD = 0.05  # less for the darkness measure: a wider box lets in hair, eyes and shadows
WRISTS = (BODY.start + 9, BODY.start + 10)
NOSE = BODY.start + 0


def mouth_area(frames: np.ndarray, keypoints: np.ndarray, unit: float) -> np.ndarray:
    """Open-mouth area per frame (head units^2), located by the ground truth's keypoints."""
    from physavatar.world.analyse import mouth_opening_area

    n = min(len(frames), len(keypoints))
    return mouth_opening_area(frames[:n], keypoints[:n], unit, pad=MOUTH_PAD)


def mouth_darkness(frames: np.ndarray, keypoints: np.ndarray, unit: float, pad: float = DARK_PAD) -> np.ndarray:
    """How dark the darkest pixels of the lips' box are per frame: 1 - (5th percentile / median) of luminance.

    The world's analyser (`mouth_area`) counts pixels of the exact mouth-interior colour, which a blurry
    decoder never reproduces; an open mouth still puts dark pixels between the lips, so this measure follows
    it through blur (correlation with the exact area on ground truth: ~0.85, after a 1.5-px blur ~0.8).
    Only its changes over time matter (it is compared by correlation).
    """
    from physavatar.world.analyse import lips_boxes

    n = min(len(frames), len(keypoints))
    out = np.zeros(n, np.float32)
    for t, (x0, y0, x1, y1) in enumerate(lips_boxes(keypoints[:n], frames.shape[1:3], unit, pad)):
        box = frames[t, y0:y1, x0:x1].astype(np.float32)
        if box.size == 0:
            continue
        lum = box @ np.array([0.299, 0.587, 0.114], np.float32)
        out[t] = 1.0 - np.percentile(lum, 5) / max(float(np.median(lum)), 1.0)
    return out


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def lip_sync(generated: np.ndarray, truth: np.ndarray, max_lag: int = 8) -> dict:
    """Correlation of two mouth-area series at lag 0, and the lag (frames) where it peaks.

    lag > 0 means the generated mouth moves `lag` frames after the truth's (video late against the audio).
    """
    n = min(len(generated), len(truth))
    g, t = np.asarray(generated[:n], np.float64), np.asarray(truth[:n], np.float64)
    if g.std() == 0 or t.std() == 0:  # a still mouth has no offset
        return {"corr": 0.0, "best_corr": 0.0, "offset_frames": None}
    best_lag, best = 0, -2.0
    for lag in range(-max_lag, max_lag + 1):
        c = _corr(g[lag:], t[: n - lag]) if lag >= 0 else _corr(g[: n + lag], t[-lag:])
        if c > best:
            best_lag, best = lag, c
    return {"corr": _corr(g, t), "best_corr": best, "offset_frames": best_lag}


def pause_frames(wav: np.ndarray, num_frames: int, min_frames: int = 5, rel_db: float = -35.0) -> np.ndarray:
    """Boolean (F,): frames inside a pause of >= min_frames frames (RMS below `rel_db` of the loudest frame)."""
    wav = np.asarray(wav, np.float32)[: num_frames * SAMPLES_PER_FRAME]
    wav = np.pad(wav, (0, num_frames * SAMPLES_PER_FRAME - len(wav)))
    rms = np.sqrt((wav.reshape(num_frames, -1) ** 2).mean(1) + 1e-12)
    quiet = 20 * np.log10(rms / rms.max()) < rel_db
    out = np.zeros(num_frames, bool)
    start = None
    for i, q in enumerate(np.append(quiet, False)):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if i - start >= min_frames:
                out[start + 2 : i] = True  # the mouth may still be closing on the first frames of a pause
            start = None
    return out


def silence(area: np.ndarray, pauses: np.ndarray) -> dict:
    """Mouth openness in pauses relative to speech (0 = shut in every pause)."""
    n = min(len(area), len(pauses))
    area, pauses = area[:n], pauses[:n]
    if not pauses.any() or pauses.all():
        return {"pause_frames": int(pauses.sum()), "pause_open_ratio": None}
    speaking = float(area[~pauses].mean())
    return {"pause_frames": int(pauses.sum()),
            "pause_open_ratio": float(area[pauses].mean() / speaking) if speaking > 0 else None}


def _histogram(frame: np.ndarray, bins: int = 8) -> np.ndarray:
    q = (frame.reshape(-1, 3) // (256 // bins)).astype(np.int64)
    h = np.bincount(q[:, 0] * bins * bins + q[:, 1] * bins + q[:, 2], minlength=bins**3).astype(np.float64)
    return h / h.sum()


def reference_similarity(frames: np.ndarray, reference: np.ndarray) -> dict:
    """Per-frame colour-histogram correlation (1 = same colours) and PSNR (dB) to the reference image."""
    ref_h = _histogram(reference)
    hist = np.array([_corr(_histogram(f), ref_h) for f in frames])
    mse = ((frames.astype(np.float64) - reference.astype(np.float64)[None]) ** 2).mean(axis=(1, 2, 3))
    psnr = 10 * np.log10(255.0**2 / np.maximum(mse, 1e-10))
    return {"hist_corr": hist, "psnr": psnr}


def drift(similarity: np.ndarray, chunk_frames: int) -> dict:
    """Mean similarity over the first and the last chunk of a long video, and their difference."""
    first, last = float(np.mean(similarity[:chunk_frames])), float(np.mean(similarity[-chunk_frames:]))
    return {"first_chunk": first, "last_chunk": last, "drop": first - last}


def motion_stats(keypoints: np.ndarray) -> dict:
    """Hands' and head's speed (frame size per second) and its spread, from (F, 127, 3) keypoints."""
    from physavatar.constants import FPS

    xy = np.asarray(keypoints, np.float64)[..., :2]
    wrist_speed = np.linalg.norm(np.diff(xy[:, list(WRISTS)], axis=0), axis=-1).mean(axis=1) * FPS
    head_speed = np.linalg.norm(np.diff(xy[:, NOSE], axis=0), axis=-1) * FPS
    spread = float(xy[:, list(WRISTS)].reshape(len(xy), -1).std(axis=0).mean())
    return {"wrist_speed_mean": float(wrist_speed.mean()), "wrist_speed_std": float(wrist_speed.std()),
            "head_speed_mean": float(head_speed.mean()), "wrist_position_std": spread}


def pixel_motion(frames: np.ndarray) -> float:
    """Mean absolute frame-to-frame change of the pixels (0-255 scale)."""
    return float(np.abs(np.diff(frames.astype(np.float32), axis=0)).mean()) if len(frames) > 1 else 0.0


HAND_TOL = 40.0  # RGB distance from the skin colour that still counts as skin through a blurry decoder
HAND_LIFT = 0.5  # head units above its lowest place in the clip that make a hand "raised"


def hand_skin(frames: np.ndarray, keypoints: np.ndarray, skin, unit: float, tol: float = HAND_TOL,
              lift: float = HAND_LIFT) -> np.ndarray:
    """Per frame, the share of the pixels in the boxes of the truth's raised hands that have the skin's colour
    (NaN in frames where no hand is raised and in view): is a hand drawn where the truth raises one?

    A hand counts as raised when its centre is `lift` head units (`unit`: the head's height in frame heights)
    above its lowest place in the clip, where it rests, and at least half its keypoints are in the frame. A video
    that keeps the reference's resting pose shows the shirt or the arm there (compare videos of the same clips:
    short sleeves put the forearm in skin colour)."""
    from physavatar.physstate.layout import LEFT_HAND, RIGHT_HAND, keypoint_boxes

    n = min(len(frames), len(keypoints))
    h, w = frames.shape[1:3]
    colour = np.asarray(skin, np.float32)
    kp = np.asarray(keypoints[:n], np.float32)
    hits, total = np.zeros(n), np.zeros(n)
    for hand in (LEFT_HAND, RIGHT_HAND):
        xy = kp[:, hand, :2]
        centre_y = xy[..., 1].mean(axis=1)
        in_frame = ((xy >= 0) & (xy <= 1)).all(axis=2).mean(axis=1) >= 0.5
        for t in np.flatnonzero(in_frame & (centre_y < centre_y.max() - lift * unit)):
            x0, y0, x1, y1 = keypoint_boxes(kp[t : t + 1], hand, pad=0.1)[0]
            box = frames[t, int(y0 * h) : int(np.ceil(y1 * h)), int(x0 * w) : int(np.ceil(x1 * w))]
            hits[t] += int((np.linalg.norm(box.astype(np.float32) - colour, axis=-1) < tol).sum())
            total[t] += box.shape[0] * box.shape[1]
    out = np.full(n, np.nan, np.float32)
    seen = total > 0
    out[seen] = hits[seen] / total[seen]
    return out
