"""Offline feature extraction for a clip dataset (`physavatar extract`), resumable per clip and feature.

For each clip of docs/clip_format.md it writes, into clips/<id>/features/:
  audio.<backend>.npz            per-frame audio features (AudioFeatures, backend recorded inside)
  plan.<planner>.{txt,json,npz}  the planner's plan text and e_con / e_tok (PlanOutput)
  latents.<vae>.safetensors      normalised VAE latents of the clip ("video") and of its reference ("reference")
  known.<vae>.m<M>n<N>.safetensors  latents of the clip with only its first M and last N frames kept ("known"):
                                 the VACE context of training's frame-interpolation steps, encoded once here
and, for clips without ground-truth physical state (curated real video), phys_tokens.npy + keypoints.npy
from the pose encoder. Every file is written atomically; a finished file is never recomputed, so a killed
run resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from physavatar.data.manifest import read_manifest

log = logging.getLogger(__name__)


def feature_paths(clip_dir: Path, audio_backend: str, planner: str, vae_name: str) -> dict[str, Path]:
    features = clip_dir / "features"
    return {
        "audio": features / f"audio.{audio_backend}.npz",
        "plan": features / f"plan.{planner}.npz",
        "latents": features / f"latents.{vae_name}.safetensors",
        "phys": clip_dir / "phys_tokens.npy",
    }


def known_frames_path(clip_dir: Path, vae_name: str, tail: int, head: int) -> Path:
    return clip_dir / "features" / f"known.{vae_name}.m{tail}n{head}.safetensors"


@dataclass
class ExtractReport:
    clips: int = 0
    written: dict[str, int] = field(
        default_factory=lambda: {"audio": 0, "plan": 0, "latents": 0, "known": 0, "phys": 0})
    skipped: list[str] = field(default_factory=list)


def extract_features(
    root: str | os.PathLike,
    *,
    audio_backend: str | None = "default",
    planner: str | None = "default",
    vae: str | os.PathLike | None = None,
    pose: str | None = "mediapipe",
    split: str | None = None,
    shard: tuple[int, int] = (0, 1),
    known_frames: tuple[int, int] | None = (5, 4),
    progress: bool = True,
    device: str = "auto",
) -> ExtractReport:
    """Compute every missing feature of every clip in `root` (see module docstring).

    shard=(k, n): only every n-th clip starting at k, so n processes (or machines) share the work.
    known_frames=(m, n): the tail/head frame counts of training's interpolation steps (data.tail_frames,
    data.head_frames); None skips those latents (the trainer then encodes them at every such step).
    device: where the VAE encodes ("auto" = CUDA when there is one). The encoders load only when a clip lacks
    their features, so a dataset whose audio and plans are done needs neither Whisper nor the text encoder.
    """
    from PIL import Image
    from safetensors.torch import save_file
    from tqdm import tqdm

    from physavatar.encoders.audio import AudioEncoderConfig, load_audio_encoder
    from physavatar.io.atomic import atomic_path, atomic_write
    from physavatar.io.audio import load_audio
    from physavatar.io.video import read_video

    root = Path(root)
    k, n = shard
    if not 0 <= k < n:
        raise ValueError(f"shard {k}/{n}: use K/N with 0 <= K < N")
    rows = [r for r in read_manifest(root, required=True) if split is None or r.get("split") == split][k::n]
    report = ExtractReport(clips=len(rows))
    audio_encoder = plan_model = pose_encoder = codec = None
    if vae is not None:
        from physavatar.device import resolve_device
        from physavatar.models.vae import LatentCodec, frames_to_tensor, interpolation_frame_mask, known_frames_latents

        codec = LatentCodec.from_pretrained(vae, device=resolve_device(device))

    def missing(kind: str) -> bool:
        return any(not feature_paths(root / r["path"], audio_backend or "none", planner or "none", "none")[kind]
                   .exists() for r in rows)  # fmt: skip

    # An encoder loads only if some clip lacks its features, and before the clip loop: a backend that cannot load
    # is one error now, not one skipped clip after another.
    if audio_backend and missing("audio"):
        audio_encoder = load_audio_encoder(AudioEncoderConfig(backend=audio_backend))
    if planner and missing("plan"):
        from physavatar.encoders.planner import PlannerConfig, load_planner

        plan_model = load_planner(PlannerConfig(backend=planner))

    for row in tqdm(rows, desc=f"extract {root}", unit="clip", disable=not progress):
        clip_dir = root / row["path"]
        paths = feature_paths(clip_dir, audio_backend or "none", planner or "none", codec.name if codec else "none")
        try:
            meta = json.loads((clip_dir / "meta.json").read_text())
            num_frames = int(meta["num_frames"])
            wav = None
            if audio_encoder is not None and not paths["audio"].exists():
                wav = load_audio(clip_dir / "audio.wav", validate=False)
                audio_encoder.encode(wav, num_frames=num_frames, name=str(clip_dir)).save(paths["audio"])
                report.written["audio"] += 1
            if plan_model is not None and not paths["plan"].exists():
                wav = load_audio(clip_dir / "audio.wav", validate=False) if wav is None else wav
                image = Image.open(clip_dir / "reference.png").convert("RGB")
                plan = plan_model.plan(image, wav)
                plan.save(paths["plan"].parent, stem=paths["plan"].stem)
                report.written["plan"] += 1
            frames = None
            if not paths["phys"].exists() and pose:
                if pose_encoder is None:
                    from physavatar.encoders.pose import load_pose_encoder

                    pose_encoder = load_pose_encoder(pose)
                frames = read_video(clip_dir / "video.mp4")
                found = pose_encoder.encode_frames(frames)
                with atomic_path(clip_dir / "keypoints.npy") as tmp:
                    np.save(tmp, found.keypoints.astype(np.float32))
                meta.setdefault("backends", {})["pose"] = found.backend
                with atomic_write(clip_dir / "meta.json", "w") as f:
                    json.dump(meta, f, indent=1)
                with atomic_path(paths["phys"]) as tmp:  # last: its presence marks the pose step done
                    np.save(tmp, found.tokens.astype(np.float16))
                report.written["phys"] += 1
            if codec is not None and not paths["latents"].exists():
                frames = read_video(clip_dir / "video.mp4") if frames is None else frames
                reference = np.asarray(Image.open(clip_dir / "reference.png").convert("RGB"))
                tensors = {
                    "video": codec.encode(frames_to_tensor(frames[:num_frames]))[0].cpu().contiguous(),
                    "reference": codec.encode(frames_to_tensor(reference[None]))[0].cpu().contiguous(),
                }
                paths["latents"].parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(paths["latents"]) as tmp:
                    save_file(tensors, tmp, metadata={"vae": codec.name})
                report.written["latents"] += 1
            known_path = None if codec is None or known_frames is None else known_frames_path(
                clip_dir, codec.name, *known_frames)
            if known_path is not None and not known_path.exists():
                frames = read_video(clip_dir / "video.mp4") if frames is None else frames
                mask = interpolation_frame_mask(num_frames, *known_frames)
                known = known_frames_latents(codec, frames_to_tensor(frames[:num_frames]), mask)[0].cpu().contiguous()
                with atomic_path(known_path) as tmp:
                    save_file({"known": known}, tmp, metadata={"vae": codec.name})
                report.written["known"] += 1
        except (OSError, ValueError, KeyError) as err:  # one bad clip is logged and skipped, never fatal
            log.warning("%s: skipped (%s)", clip_dir, err)
            report.skipped.append(f"{row.get('id')}: {err}")
    return report
