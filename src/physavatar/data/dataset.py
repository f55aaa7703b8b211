"""Training clips with their extracted features, validated once when the dataset is opened.

A clip whose pieces disagree (a different frame count, missing features) is skipped with the reason logged
and listed in `dataset.skipped`; an empty result is an error that names the folder and the reasons. All
features of all clips must come from one encoder backend each (`require_same_backend`).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from physavatar.constants import num_latent_frames
from physavatar.data.features import feature_paths, known_frames_path
from physavatar.data.manifest import read_manifest
from physavatar.encoders.backend import require_same_backend

log = logging.getLogger(__name__)


@dataclass
class ClipSample:
    clip_dir: str
    latents: torch.Tensor  # (z, f, h, w) normalised VAE latents of the clip
    reference: torch.Tensor  # (z, 1, h, w) latents of the reference image
    audio: torch.Tensor  # (F, C_aud)
    phys: torch.Tensor  # (F, 4, 256) physical-state tokens
    e_con: torch.Tensor | None  # (L, C_MLLM) planner hidden states
    e_tok: torch.Tensor | None  # (L, C_MLLM) planner token embeddings
    face: torch.Tensor | None = None  # (f, h, w) 1 on the latent pixels of the face box (face_masks=True)
    mouth: torch.Tensor | None = None  # (f, h, w) 1 on the latent pixels of the lips' box (face_masks=True)
    hands: torch.Tensor | None = None  # (f, h, w) 1 on the latent pixels of the hands in view (face_masks=True)
    known: torch.Tensor | None = None  # (z, f, h, w) latents of the known-frames video (known_frames=(m, n))


class ClipDataset(Dataset):
    def __init__(self, root: str | os.PathLike, *, num_frames: int, split: str | None = "train",
                 audio_backend: str = "default", planner: str | None = "default", vae_name: str = "vae",
                 face_masks: bool = False, known_frames: tuple[int, int] | None = None):
        from safetensors.torch import load_file

        from physavatar.encoders.audio import AudioFeatures

        self.root = Path(root)
        num_latents = num_latent_frames(num_frames)
        self.samples: list[ClipSample] = []
        self.skipped: list[str] = []
        audio_backends, plan_backends = [], []
        rows = [r for r in read_manifest(self.root, required=True) if split is None or r.get("split") == split]
        for row in rows:
            clip_dir = self.root / row["path"]
            paths = feature_paths(clip_dir, audio_backend, planner or "none", vae_name)
            try:
                needed = ["audio", "latents", "phys"] + (["plan"] if planner else [])
                missing = [k for k in needed if not paths[k].exists()]
                if missing:
                    raise ValueError(f"missing {', '.join(missing)} (run `physavatar extract {self.root}`)")
                audio = AudioFeatures.load(paths["audio"])
                latents = load_file(paths["latents"])
                phys = np.load(paths["phys"]).astype(np.float32)
                if audio.num_frames != num_frames or phys.shape[0] != num_frames:
                    raise ValueError(f"{audio.num_frames} audio frames and {phys.shape[0]} pose frames; "
                                     f"the config trains on {num_frames}")
                if latents["video"].shape[1] != num_latents:
                    raise ValueError(f"{latents['video'].shape[1]} latent frames, expected {num_latents}")
                e_con = e_tok = None
                if planner:
                    with np.load(paths["plan"]) as plan:
                        e_con, e_tok = torch.from_numpy(plan["e_con"]).float(), torch.from_numpy(plan["e_tok"]).float()
                        plan_backends.append(str(plan["backend"]))
                face = mouth = hands = None
                if face_masks:
                    if not (clip_dir / "keypoints.npy").exists():
                        raise ValueError("no keypoints.npy (loss.face_weight / mouth_weight / hand_weight need each "
                                         "clip's keypoints)")
                    kp = np.load(clip_dir / "keypoints.npy")
                    face, mouth, hands = (region_latent_mask(kp, latents["video"].shape[-2:], region=region)
                                          for region in ("face", "mouth", "hands"))
                known = None
                known_path = None if known_frames is None else known_frames_path(clip_dir, vae_name, *known_frames)
                if known_path is not None and known_path.exists():
                    known = load_file(known_path)["known"].float()
                    if known.shape != latents["video"].shape:
                        raise ValueError(f"{known_path.name} holds {tuple(known.shape)} latents, the clip "
                                         f"{tuple(latents['video'].shape)}: delete it and run `physavatar extract`")
                audio_backends.append(audio.backend)
                self.samples.append(ClipSample(
                    clip_dir=str(clip_dir), latents=latents["video"].float(), reference=latents["reference"].float(),
                    audio=torch.from_numpy(audio.features), phys=torch.from_numpy(phys),
                    e_con=e_con, e_tok=e_tok, face=face, mouth=mouth, hands=hands, known=known))
            except (OSError, ValueError, KeyError, json.JSONDecodeError) as err:
                log.warning("%s: skipped (%s)", clip_dir, err)
                self.skipped.append(f"{row.get('id')}: {err}")
        if not self.samples:
            reasons = "; ".join(self.skipped[:5]) or "the manifest lists no clip of this split"
            raise ValueError(f"{self.root}: no usable {split or ''} clip ({reasons})")
        self.audio_backend = require_same_backend(audio_backends, "audio features")
        self.plan_backend = require_same_backend(plan_backends, "plan embeddings") if planner else None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> ClipSample:
        return self.samples[index]


def region_latent_mask(kp: np.ndarray, latent_hw: tuple[int, int], region: str = "face") -> torch.Tensor:
    """(f, h, w) float mask of the latent pixels that hold the face (the lips' box with `region="mouth"`, the hands
    in view with `region="hands"`) in any frame of each latent, from keypoints (F, 127, 3) with F = 1 + 4k
    (latent 0 is frame 0, latent k frames 4k-3 .. 4k)."""
    from physavatar.models.audio import group_frames_to_latents
    from physavatar.physstate.layout import LEFT_HAND, MOUTH, RIGHT_HAND, box_mask, face_boxes, keypoint_boxes

    if region not in ("face", "mouth", "hands"):
        raise ValueError(f"region={region!r}: use 'face', 'mouth' or 'hands'")
    size = tuple(latent_hw)
    if region == "hands":  # a hand below the frame's edge clips to an empty box
        mask = np.maximum(*(box_mask(keypoint_boxes(kp, hand, pad=0.3), size) for hand in (LEFT_HAND, RIGHT_HAND)))
    else:
        mask = box_mask(face_boxes(kp) if region == "face" else keypoint_boxes(kp, MOUTH, pad=0.5), size)
    frames = torch.from_numpy(mask).float()[None]  # (1, F, h, w)
    return group_frames_to_latents(frames).amax(dim=2)[0]


def collate(samples: list[ClipSample]) -> dict:
    """Stack a batch; plans of different lengths are zero-padded to the longest."""
    batch = {
        "clip_dir": [s.clip_dir for s in samples],
        "latents": torch.stack([s.latents for s in samples]),
        "reference": torch.stack([s.reference for s in samples]),
        "audio": torch.stack([s.audio for s in samples]),
        "phys": torch.stack([s.phys for s in samples]),
        "e_con": None,
        "e_tok": None,
        "face": torch.stack([s.face for s in samples]) if samples[0].face is not None else None,
        "mouth": torch.stack([s.mouth for s in samples]) if samples[0].mouth is not None else None,
        "hands": torch.stack([s.hands for s in samples]) if samples[0].hands is not None else None,
        "known": [s.known for s in samples],  # a list: a clip without the feature file has None
    }
    if samples[0].e_con is not None:
        length = max(s.e_con.shape[0] for s in samples)

        def pad(x):
            return torch.cat([x, x.new_zeros(length - x.shape[0], x.shape[1])])

        batch["e_con"] = torch.stack([pad(s.e_con) for s in samples])
        batch["e_tok"] = torch.stack([pad(s.e_tok) for s in samples])
    return batch
