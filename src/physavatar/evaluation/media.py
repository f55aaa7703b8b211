"""What `physavatar eval` reads: folders of mp4 files, or clip datasets (docs/clip_format.md).

A folder is read as a clip dataset when it has a manifest.jsonl (clips listed there) or clip folders
(`<id>/video.mp4`, directly or under `clips/`); otherwise every `*.mp4` in it is one video, named by its
stem. Items are matched between generated and reference sets by that name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from physavatar.constants import FPS, NUM_KEYPOINTS, SAMPLE_RATE


@dataclass(frozen=True)
class VideoSource:
    """One video to evaluate: where its frames, audio, keypoints and reference image live (if anywhere)."""

    name: str
    video: Path
    audio: Path | None = None  # a clip's audio.wav; None: the mp4's own audio track, if any
    keypoints: Path | None = None
    reference_image: Path | None = None


@dataclass
class LoadedVideo:
    name: str
    frames: np.ndarray  # (F, H, W, 3) uint8 at FPS
    audio: np.ndarray | None  # (N,) float32 at SAMPLE_RATE, or None when the video has none
    keypoints: np.ndarray | None  # (F, 127, 3) float32 (clip format), when the source gives them
    reference_image: np.ndarray | None  # (H, W, 3) uint8


def _clip_source(name: str, clip_dir: Path) -> VideoSource:
    def opt(fname: str) -> Path | None:
        p = clip_dir / fname
        return p if p.is_file() else None

    if not (clip_dir / "video.mp4").is_file():
        raise FileNotFoundError(f"{clip_dir}: clip has no video.mp4; is this a finished clip (docs/clip_format.md)?")
    return VideoSource(name, clip_dir / "video.mp4", opt("audio.wav"), opt("keypoints.npy"), opt("reference.png"))


def discover(folder: str | os.PathLike) -> list[VideoSource]:
    """The videos in `folder` (mp4 folder or clip dataset), sorted by name; raises when there are none."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder; give a folder of .mp4 files or a clip dataset")
    manifest = root / "manifest.jsonl"
    if manifest.is_file():
        sources = []
        for line_no, line in enumerate(manifest.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                sources.append(_clip_source(str(entry["id"]), root / entry["path"]))
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise ValueError(f"{manifest}:{line_no}: not a clip manifest line ({err}); see docs/clip_format.md")
    else:
        clip_root = root / "clips" if (root / "clips").is_dir() else root
        clip_dirs = sorted(p for p in clip_root.iterdir() if p.is_dir() and (p / "video.mp4").is_file())
        if clip_dirs:
            sources = [_clip_source(p.name, p) for p in clip_dirs]
        else:
            sources = [VideoSource(p.stem, p) for p in sorted(root.glob("*.mp4"))]
    if not sources:
        raise ValueError(f"{root}: no videos found; give a folder of .mp4 files or a clip dataset "
                         "(manifest.jsonl + clips/<id>/video.mp4)")
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"{root}: duplicate video names {sorted({n for n in names if names.count(n) > 1})[:3]}")
    return sorted(sources, key=lambda s: s.name)


def load(source: VideoSource, max_frames: int | None = None) -> LoadedVideo:
    """Decode one video at the project's fps, with its audio (16 kHz mono), keypoints and reference image."""
    from physavatar.io import load_audio, load_image, probe_video, read_video

    frames = read_video(source.video, FPS, max_frames=max_frames)
    if len(frames) == 0:
        raise ValueError(f"{source.video}: no frames decoded; give a non-empty video")
    audio = None
    if source.audio is not None:
        audio = load_audio(source.audio, SAMPLE_RATE, validate=False)
    elif probe_video(source.video).has_audio:
        audio = load_audio(source.video, SAMPLE_RATE, validate=False)
    keypoints = None
    if source.keypoints is not None:
        keypoints = np.load(source.keypoints).astype(np.float32)
        if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_KEYPOINTS, 3):
            raise ValueError(f"{source.keypoints}: keypoints of shape {keypoints.shape}, expected "
                             f"(F, {NUM_KEYPOINTS}, 3) (docs/clip_format.md)")
        keypoints = keypoints[: len(frames)]
    reference = None
    if source.reference_image is not None:
        reference = np.asarray(load_image(source.reference_image, min_side=1).convert("RGB"))
    return LoadedVideo(source.name, frames, audio, keypoints, reference)
