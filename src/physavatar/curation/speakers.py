"""Single-speaker check of a segment: face tracks (how many people) and identity embeddings (who).

A segment keeps one speaker when (1) its main face track is present in enough sampled frames, (2) no
second face track is present for long (a second person in view), and (3) the face crops sampled along
the main track all belong to one identity. Identity uses dlib's 128-d face descriptor (the
`face-recognition` models, what `physavatar.evaluation` uses for CSIM) when it is installed *and* dlib
finds a real face in the crops; otherwise a documented fallback compares hue–saturation histograms of the
face region (Bhattacharyya distance). That fallback only catches a change of person with different skin,
hair or lighting; the manifest records which method decided every segment.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from physavatar.curation.faces import Track, iou

CROP_MARGIN = 0.35  # identity crops: face box grown by 35 % on each side, so dlib's detector sees a whole head
CROP_SIDE = 160
MAX_SAMPLES = 8  # identity samples embedded per segment, evenly spread (dlib costs ~0.15 s each)


@dataclass
class IdentitySample:
    frame: int
    box: np.ndarray  # x0, y0, x1, y1 in source pixels
    crop: np.ndarray  # (CROP_SIDE, CROP_SIDE, 3) uint8 RGB, the face with margin


def face_crop(frame: np.ndarray, box: np.ndarray, side: int = CROP_SIDE) -> np.ndarray:
    """Square crop around a face box (grown by CROP_MARGIN, padded with edge pixels), resized to side²."""
    import cv2

    x0, y0, x1, y1 = box
    half = max(x1 - x0, y1 - y0) * (0.5 + CROP_MARGIN)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    h, w = frame.shape[:2]
    m = int(math.ceil(half)) + 1
    padded = cv2.copyMakeBorder(frame, m, m, m, m, cv2.BORDER_REPLICATE)
    a0, b0 = int(round(cy - half)) + m, int(round(cx - half)) + m
    size = max(int(round(2 * half)), 2)
    return cv2.resize(padded[a0:a0 + size, b0:b0 + size], (side, side), interpolation=cv2.INTER_AREA)


def colour_histogram(crop: np.ndarray) -> np.ndarray:
    """Normalised 16×8 hue–saturation histogram of the inner face region of an identity crop."""
    import cv2

    s = crop.shape[0]
    inner = crop[int(s * 0.3):int(s * 0.7), int(s * 0.3):int(s * 0.7)]  # the face itself, not the background
    hsv = cv2.cvtColor(np.ascontiguousarray(inner), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256]).astype(np.float32).ravel()
    return hist / max(hist.sum(), 1e-9)


def bhattacharyya(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.sqrt(max(0.0, 1.0 - np.sum(np.sqrt(p * q)))))


@functools.lru_cache(maxsize=1)
def dlib_embedder():
    """dlib face descriptor if face-recognition's models are installed, else None (fallback is used)."""
    try:
        from physavatar.evaluation.backbones.face_id import DlibFaceEmbedder

        return DlibFaceEmbedder()
    except Exception:  # noqa: BLE001 - missing package or weights: the documented fallback decides
        return None


def count_identities(vectors: list[np.ndarray], threshold: float, dist) -> int:
    """Identities among samples: single-linkage groups at `threshold`, counting groups of >= 20 % (min 2)."""
    n = len(vectors)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            if dist(vectors[i], vectors[j]) < threshold:
                parent[find(i)] = find(j)
    sizes: dict[int, int] = {}
    for i in range(n):
        sizes[find(i)] = sizes.get(find(i), 0) + 1
    need = max(2, math.ceil(0.2 * n))
    return max(1, sum(1 for s in sizes.values() if s >= need))


def identity_check(samples: list[IdentitySample], dlib_threshold: float, hist_threshold: float,
                   method: str = "auto") -> dict:
    """How many identities the sampled face crops of one track show, and which method decided.

    method "auto": dlib when installed and it finds a face in at least half the crops, else the colour
    histogram; "dlib" / "histogram" force one. dlib's HOG detector also "finds" cartoon faces (the synthetic
    world) but its descriptor does not tell cartoon people apart: use "histogram" for world data.
    """
    if len(samples) < 4:
        return {"method": "none", "identities": 1, "samples": len(samples),
                "note": "fewer than 4 identity samples: identity not checked"}
    if len(samples) > MAX_SAMPLES:
        samples = [samples[i] for i in np.linspace(0, len(samples) - 1, MAX_SAMPLES).round().astype(int)]
    note = "colour histogram chosen (--identity-method histogram)"
    emb = dlib_embedder() if method in ("auto", "dlib") else None
    if emb is not None:
        vecs = [v for v in (emb.embed(s.crop) for s in samples) if v is not None]
        if len(vecs) >= max(4, len(samples) // 2):
            k = count_identities(vecs, dlib_threshold, lambda a, b: float(np.linalg.norm(a - b)))
            return {"method": "dlib-face-descriptor", "identities": k, "samples": len(samples),
                    "embedded": len(vecs), "threshold": dlib_threshold}
        note = f"dlib found a face in {len(vecs)}/{len(samples)} crops: colour-histogram fallback"
    elif method != "histogram":
        note = "face-recognition/dlib not installed: colour-histogram fallback"
    hists = [colour_histogram(s.crop) for s in samples]
    k = count_identities(hists, hist_threshold, bhattacharyya)
    return {"method": "colour-histogram", "identities": k, "samples": len(samples), "threshold": hist_threshold,
            "note": note}


def speaker_decision(tracks: list[Track], num_samples: int, min_face_fraction: float,
                     other_person_fraction: float) -> tuple[Track | None, dict]:
    """The main face track of a segment and the measurements; track None when the segment has no speaker."""
    cover = sorted(((len(t.frames) / max(num_samples, 1), t) for t in tracks), key=lambda x: -x[0])
    info = {"face_tracks": len(tracks), "coverage": [round(c, 3) for c, _ in cover[:4]], "samples": num_samples}
    if not cover or cover[0][0] < min_face_fraction:
        info["reason"] = (f"no speaker: the main face is seen in {cover[0][0] if cover else 0:.0%} of sampled "
                          f"frames (< {min_face_fraction:.0%})")
        return None, info
    others = [c for c, _ in cover[1:] if c >= other_person_fraction]
    info["people"] = 1 + len(others)
    if others:
        info["reason"] = f"several people: {1 + len(others)} face tracks each seen in >= {other_person_fraction:.0%}"
        return None, info
    return cover[0][1], info


def samples_on_track(samples: list[IdentitySample], track: Track) -> list[IdentitySample]:
    """Identity samples whose box matches the track's (interpolated) box at that frame."""
    lo, hi = track.frames[0], track.frames[-1]
    out = []
    for s in samples:
        if lo <= s.frame <= hi and iou(s.box, track.box_at(np.array([s.frame]))[0]) > 0.3:
            out.append(s)
    return out
