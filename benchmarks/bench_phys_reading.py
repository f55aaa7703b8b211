"""Which pass the predicted physical state should be read from: the audio pass (the paper) or the no-audio pass.

    python benchmarks/bench_phys_reading.py --json benchmarks/results/phys_reading_shipped.json
    python benchmarks/bench_phys_reading.py --model runs/x/pipeline --cases 2

Eq. 4 supervises Proj_Phys only at latents whose audio token is masked, while the paper reads it at inference
from the pass "with no audio tokens being masked", a case training never supervises. Every sampling step already
runs both passes in one batch (audio guidance), so both readings come from the same video: each case is generated
twice with the same seed (`phys_pass="audio"` and `"no_audio"`), the videos are checked to be identical, and each
reading's keypoints (physstate/tokens.decode_tokens) are scored against the world renderer's truth for the same
speech and person:
  lip sync          correlation of the predicted inner-lip gap with the truth's (lag 0)
  face shape        Procrustes disparity of the 68 face points to the truth's, per frame (0: same shape up to
                    position, scale and rotation; 1: unrelated); a scribbled face scores high
  face jitter       mean speed of the face points around their own centroid (frame widths per s), truth beside it
  wrists, head      wrist and nose speed (evaluation/world_quality.motion_stats), truth beside them
  placement         mean distance of body / face points to the truth's (frame widths): is the person where the
                    reference puts them?
Cases: bench_demo.py's held-out sentences, voices and people, and the world's own speech (new seeds) spoken by the
same people with the world's own voices. ~1 min per case on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def face_shape_disparity(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Mean over frames of the Procrustes disparity of the face points (F, 68, 2) against the truth's."""
    from scipy.spatial import procrustes

    values = []
    for p, t in zip(predicted, truth):
        try:
            values.append(procrustes(t, p)[2])
        except ValueError:  # all points in one place: no shape at all
            values.append(1.0)
    return float(np.mean(values))


def face_jitter(face: np.ndarray) -> float:
    """Mean speed (frame widths per s) of the face points (F, 68, 2) around their own centroid."""
    from physavatar.constants import FPS

    centred = face - face.mean(axis=1, keepdims=True)
    return float(np.linalg.norm(np.diff(centred, axis=0), axis=-1).mean() * FPS)


def score(keypoints: np.ndarray, truth: np.ndarray) -> dict:
    from physavatar.evaluation.world_quality import lip_sync, motion_stats
    from physavatar.physstate.layout import BODY, FACE
    from physavatar.world.body import mouth_aperture

    n = min(len(keypoints), len(truth))
    kp, tr = keypoints[:n, :, :2].astype(np.float64), truth[:n, :, :2].astype(np.float64)
    motion = motion_stats(keypoints[:n])
    return {
        "lip_sync": lip_sync(mouth_aperture(keypoints[:n]), mouth_aperture(truth[:n]))["corr"],
        "face_shape_disparity": face_shape_disparity(kp[:, FACE], tr[:, FACE]),
        "face_jitter": face_jitter(kp[:, FACE]),
        "wrist_speed": motion["wrist_speed_mean"],
        "head_speed": motion["head_speed_mean"],
        "body_placement_error": float(np.linalg.norm(kp[:, BODY] - tr[:, BODY], axis=-1).mean()),
        "face_placement_error": float(np.linalg.norm(kp[:, FACE] - tr[:, FACE], axis=-1).mean()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="pipeline folder (default: the shipped demo model)")
    parser.add_argument("--cases", type=int, default=4, help="cases of each kind of speech (1-16)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each world-speech case")
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args()
    if args.cases < 1:
        parser.error(f"--cases {args.cases}: give at least 1")

    import torch
    from PIL import Image

    from bench_demo import IDENTITY_SEEDS, SENTENCES, VOICES, speech
    from physavatar.commands.demo import model_framing
    from physavatar.commands.generate import default_model_dir
    from physavatar.constants import FPS
    from physavatar.evaluation.world_quality import motion_stats
    from physavatar.inference.pipeline import PhysAvatarPipeline
    from physavatar.inference.sampler import PHYS_PASSES
    from physavatar.io.video import read_video
    from physavatar.physstate.layout import FACE
    from physavatar.physstate.tokens import decode_tokens
    from physavatar.world.clip import drive_avatar
    from physavatar.world.identity import make_identity
    from physavatar.world.speech import make_speech

    torch.set_grad_enabled(False)
    model = Path(args.model) if args.model else default_model_dir()
    pipe = PhysAvatarPipeline.from_pretrained(model)
    framing = model_framing(model)
    tmp = Path(tempfile.mkdtemp(prefix="bench_phys_reading_"))
    report: dict = {"model": str(model), "framing": framing, "threads": torch.get_num_threads(), "cases": []}
    cases = min(args.cases, len(SENTENCES))
    for kind in ("sentences", "world"):
        for i in range(cases):
            if kind == "sentences":
                wav, voice = speech(SENTENCES[i], VOICES[i % len(VOICES)])
            else:
                world = make_speech(70_000 + i, int(args.seconds * FPS), language="en", running_p=0.0)  # version 3
                wav, voice = world.wav, world.voice
            truth = drive_avatar(make_identity(IDENTITY_SEEDS[i], framing), wav, clip_seed=i,
                                 size=int(pipe.config.size))
            row: dict = {"kind": kind, "voice": voice, "seconds": round(len(truth.wav) / 16000, 2)}
            videos = []
            for phys_pass in PHYS_PASSES:
                out = tmp / f"{kind}_{i}_{phys_pass}.mp4"
                result = pipe.generate(Image.fromarray(truth.reference), truth.wav, out, seed=i,
                                       phys_pass=phys_pass, progress=False)
                videos.append(read_video(out))
                keypoints = decode_tokens(np.load(result.files["phys"]).astype(np.float32))
                row[phys_pass] = score(keypoints, truth.keypoints)
            # same seed, same passes: only the reading differs, so the videos must match exactly
            row["videos_identical"] = bool(np.array_equal(videos[0], videos[1]))
            true_motion = motion_stats(truth.keypoints)
            row["truth"] = {"face_jitter": face_jitter(truth.keypoints[:, FACE, :2].astype(np.float64)),
                            "wrist_speed": true_motion["wrist_speed_mean"],
                            "head_speed": true_motion["head_speed_mean"]}
            report["cases"].append(row)
            print(f"{kind} {i} ({voice}): " + "; ".join(
                f"{p} lips {row[p]['lip_sync']:.2f} face {row[p]['face_shape_disparity']:.3f} "
                f"jitter {row[p]['face_jitter']:.2f}" for p in PHYS_PASSES), file=sys.stderr, flush=True)

    def mean(kind: str, key: str, sub: str) -> float:
        return round(float(np.mean([c[key][sub] for c in report["cases"] if c["kind"] == kind])), 4)

    report["summary"] = {
        kind: {key: {sub: mean(kind, key, sub) for sub in report["cases"][0][key]} for key in (*PHYS_PASSES, "truth")}
        for kind in ("sentences", "world")}
    report["all_videos_identical"] = all(c["videos_identical"] for c in report["cases"])
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        from physavatar.io.atomic import atomic_write

        with atomic_write(args.json, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
