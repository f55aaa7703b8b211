"""How well the training features predict the mouth: a ridge probe on world clips, new people at test.

    python benchmarks/probe_world_audio_mouth.py --data data/world --vae-name vae_world
    python benchmarks/probe_world_audio_mouth.py --data data/world --model PIPELINE --json probe.json

Per video frame, the stored audio features of `physavatar extract` (Whisper tiny.en by default, one vector per
25-fps frame, what the transformer's audio branch reads) are mapped linearly to the truth's mouth opening: the
gap between the inner lips (iBUG 62 and 66) in face heights, from each clip's keypoints. Fitted on the train
split, scored (correlation) on the test split, whose people were never trained on. A high score means the
audio the model is given determines the mouth; a model that still does not move its lips has not learned to use
it. Also printed: how much the face's physical-state token (the L_disc target) varies with the mouth.

--held-out N (default 4) also scores the probe on speech no clip holds: N 5-s clips of the world's own speech
(new seeds) and bench_demo.py's N held-out sentences spoken with training voices (bench_demo_speech.py's cases),
each rendered by the world for a new person, its features encoded per 33-frame window as the pipeline encodes
them (with the default audio encoder, the one `physavatar extract` uses unless told otherwise); over all frames
and within speech only (pauses of >= 5 frames left out: do the features follow the syllables?). --model PIPELINE
adds the same probe per latent frame from that model's audio tokens (Proj_aud's output, what its audio
cross-attention reads) beside the raw features averaged over each latent's frames: what the projector keeps of
the mouth, on the training kind of speech and on free speech. ~2 min.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def lip_gap(keypoints: np.ndarray) -> np.ndarray:
    """Inner-lip gap (iBUG 62 -> 66) per frame, in face heights."""
    from physavatar.physstate.layout import FACE

    face = keypoints[:, FACE, :2]
    height = face[:, :, 1].max(axis=1) - face[:, :, 1].min(axis=1)
    return (face[:, 66, 1] - face[:, 62, 1]) / height


def load(data: str, split: str, vae_name: str, num_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from physavatar.data.dataset import ClipDataset
    from physavatar.physstate.layout import PHYS_PARTS

    dataset = ClipDataset(data, num_frames=num_frames, split=split, vae_name=vae_name)
    face_token = PHYS_PARTS.index("face")
    features, gaps, tokens = [], [], []
    for sample in dataset.samples:
        gaps.append(lip_gap(np.load(Path(sample.clip_dir) / "keypoints.npy")))
        features.append(sample.audio.numpy())
        tokens.append(sample.phys[:, face_token].numpy())
    return np.concatenate(features), np.concatenate(gaps), np.concatenate(tokens)


class Ridge:
    """Ridge regression on z-scored inputs (the penalty in units of the standardised features)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, penalty: float):
        self.mean, self.std = x.mean(axis=0), x.std(axis=0) + 1e-6
        a = (x - self.mean) / self.std
        self.weights = np.linalg.solve(a.T @ a + penalty * np.eye(a.shape[1]), a.T @ (y - y.mean()))

    def score(self, x: np.ndarray, y: np.ndarray) -> float:
        return round(float(np.corrcoef((x - self.mean) / self.std @ self.weights, y)[0, 1]), 3)


def per_latent(features: np.ndarray, gaps: np.ndarray, projector, window: int) -> dict[str, np.ndarray]:
    """Clips of `window` frames -> per latent frame: raw features and gap averaged over the latent's frames
    (latent 0 = frame 0), and the model's audio tokens."""
    import torch

    from physavatar.models.audio import group_frames_to_latents

    x = torch.from_numpy(features.astype(np.float32)).unflatten(0, (-1, window))  # (clips, F, C)
    y = torch.from_numpy(gaps.astype(np.float32)).unflatten(0, (-1, window))[..., None]
    with torch.no_grad():
        tokens = projector(x)
    return {"raw": group_frames_to_latents(x).mean(2).flatten(0, 1).numpy(),
            "tokens": tokens.flatten(0, 1).float().numpy(),
            "gap": group_frames_to_latents(y).mean(2).flatten().numpy()}


def held_out_cases(count: int, window: int, framing: str) -> dict[str, list[dict]]:
    """World speech (5 s, new seeds) and the held-out sentences, each with its truth's lip gap, speech frames
    and per-window features (as the pipeline encodes them), cut to whole windows."""
    from bench_demo import IDENTITY_SEEDS, SENTENCES, speech
    from bench_demo_speech import TRAINING_VOICES

    from physavatar.constants import SAMPLES_PER_FRAME
    from physavatar.encoders.audio import AudioEncoderConfig, load_audio_encoder
    from physavatar.evaluation.world_quality import pause_frames
    from physavatar.world.clip import drive_avatar
    from physavatar.world.identity import make_identity
    from physavatar.world.speech import make_speech

    encoder = load_audio_encoder(AudioEncoderConfig())
    cases: dict[str, list[dict]] = {"world": [], "sentences": []}
    for kind in cases:
        for i in range(min(count, len(SENTENCES))):
            wav = (make_speech(70_000 + i, 125, language="en").wav if kind == "world"
                   else speech(SENTENCES[i], TRAINING_VOICES[i % len(TRAINING_VOICES)])[0])
            truth = drive_avatar(make_identity(IDENTITY_SEEDS[i], framing), wav, clip_seed=i, size=128)
            n = len(truth.frames) // window * window
            step = window * SAMPLES_PER_FRAME
            features = np.concatenate([np.asarray(encoder.encode(truth.wav[k * step : (k + 1) * step],
                                                                 num_frames=window, name="audio").features)
                                       for k in range(n // window)])
            cases[kind].append({"features": features, "gap": lip_gap(truth.keypoints)[:n],
                                "speech": ~pause_frames(truth.wav, len(truth.frames))[:n]})
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/world", help="world dataset with extracted features")
    parser.add_argument("--vae-name", default="vae_world", help="the latents' name (the dataset loader needs them)")
    parser.add_argument("--frames", type=int, default=33, help="frames per clip (data.num_frames)")
    parser.add_argument("--ridge", type=float, default=10.0, help="ridge penalty on z-scored features")
    parser.add_argument("--held-out", type=int, default=4, help="cases of world speech and of held-out "
                        "sentences to score the probe on (0: none; max 6)")
    parser.add_argument("--framing", default="portrait", help="framing of the held-out people (the world's)")
    parser.add_argument("--model", help="also probe this pipeline's audio tokens, per latent frame")
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args()
    x_train, y_train, _ = load(args.data, "train", args.vae_name, args.frames)
    x_test, y_test, tokens = load(args.data, "test", args.vae_name, args.frames)
    probe = Ridge(x_train, y_train, args.ridge)
    report: dict = {"train_frames": len(x_train), "test_frames": len(x_test),
                    "features_to_gap": {"test_clips": probe.score(x_test, y_test)}}
    print(f"{len(x_train)} train / {len(x_test)} test frames; audio features -> inner-lip gap, "
          f"test correlation {report['features_to_gap']['test_clips']:.3f}")
    varying = tokens.std(axis=0) > 0
    corr = np.array([np.corrcoef(tokens[:, d], y_test)[0, 1] for d in np.flatnonzero(varying)])
    print(f"face token: std over frames {tokens.std(axis=0).mean():.4f} (mean |value| {np.abs(tokens).mean():.3f}); "
          f"{int((np.abs(corr) > 0.5).sum())} of {tokens.shape[1]} dims correlate with the gap above 0.5 "
          f"(max {np.abs(corr).max():.2f})")

    cases = held_out_cases(args.held_out, args.frames, args.framing) if args.held_out else {}
    for kind, rows in cases.items():
        report["features_to_gap"][kind] = {
            "all_frames": round(float(np.mean([probe.score(c["features"], c["gap"]) for c in rows])), 3),
            "within_speech": round(float(np.mean([probe.score(c["features"][c["speech"]], c["gap"][c["speech"]])
                                                  for c in rows])), 3)}
        print(f"{kind} ({len(rows)} cases): features -> gap {report['features_to_gap'][kind]}")

    if args.model:
        from physavatar.inference.pipeline import PhysAvatarPipeline

        projector = PhysAvatarPipeline.from_pretrained(args.model).transformer.audio_proj.float()
        train = per_latent(x_train, y_train, projector, args.frames)
        sets = {"test_clips": [per_latent(x_test, y_test, projector, args.frames)],
                **{kind: [per_latent(c["features"], c["gap"], projector, args.frames) for c in rows]
                   for kind, rows in cases.items()}}
        probes = {what: Ridge(train[what], train["gap"], args.ridge) for what in ("raw", "tokens")}
        report["model"] = str(args.model)
        report["per_latent"] = {what: {name: round(float(np.mean([probes[what].score(s[what], s["gap"])
                                                                   for s in rows])), 3)
                                       for name, rows in sets.items()} for what in probes}
        print(f"per latent frame, -> mean gap of its frames: {report['per_latent']}")
    if args.json:
        from physavatar.io.atomic import atomic_write

        with atomic_write(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
