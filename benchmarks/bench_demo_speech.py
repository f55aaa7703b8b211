"""Lip sync of a demo pipeline by kind of speech: the world's own grammar against free sentences.

    python benchmarks/bench_demo_speech.py --model runs/demo_portrait_stage2/pipeline --json speech.json

bench_demo_windows.py scores single windows of world test clips; bench_demo.py scores the whole pipeline on
free sentences, where the portrait candidate's lips stopped following (docs/demo.md, "Portrait framing"). This
one separates the two: every case goes through `PhysAvatarPipeline.generate` with its defaults, spoken by a new
person of the model's framing with a voice of the world's training list, and scores the correlation (lag 0) of
the generated mouth darkness with the world renderer's truth for the same speech (evaluation/world_quality):
  grammar    N clips of the world's English grammar (`world.speech.make_speech`, new seeds), --seconds long
  sentences  bench_demo.py's held-out sentences, the same people and voices
For the free sentences it also scores the frames of the odd chunks, of the interpolated even chunks and of the
first chunk alone (generated like a single window). ~4 min per 4 cases of each kind on 2 cores.
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

TRAINING_VOICES = ("en-us+m3", "en-us+f2", "en-gb+m1", "en-us+klatt", "en-us+m5", "en-us+f4")


def mean(values: list[float]) -> float:
    return round(float(np.mean(values)), 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="pipeline folder (default: the shipped demo model)")
    parser.add_argument("--cases", type=int, default=4, help="cases of each kind of speech (max 6)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each grammar clip")
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args()

    import torch
    from PIL import Image

    from bench_demo import IDENTITY_SEEDS, SENTENCES, speech
    from physavatar.commands.demo import model_framing
    from physavatar.commands.generate import default_model_dir
    from physavatar.constants import FPS
    from physavatar.evaluation.world_quality import lip_sync, mouth_darkness
    from physavatar.inference.chunks import plan_interleaved
    from physavatar.inference.pipeline import PhysAvatarPipeline
    from physavatar.io.video import read_video
    from physavatar.world.clip import drive_avatar
    from physavatar.world.identity import make_identity
    from physavatar.world.speech import make_speech

    torch.set_grad_enabled(False)
    model = Path(args.model) if args.model else default_model_dir()
    pipe = PhysAvatarPipeline.from_pretrained(model)
    framing, chunk = model_framing(model), int(pipe.config.chunk_frames)
    tmp = Path(tempfile.mkdtemp(prefix="bench_demo_speech_"))

    def corr(generated: np.ndarray, truth: np.ndarray) -> float:
        return lip_sync(generated, truth)["corr"]  # bench_demo.py's lip-sync measure, at lag 0

    def run(tag: str, wav: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray]:
        truth = drive_avatar(make_identity(IDENTITY_SEEDS[i], framing), wav, clip_seed=i, size=int(pipe.config.size))
        out = tmp / f"{tag}_{i}.mp4"
        pipe.generate(Image.fromarray(truth.reference), truth.wav, out, seed=i, progress=False)
        frames = read_video(out)
        n = min(len(frames), len(truth.frames))
        unit = truth.identity.framing.unit
        return (mouth_darkness(frames[:n], truth.keypoints[:n], unit),
                mouth_darkness(truth.frames[:n], truth.keypoints[:n], unit))

    cases = min(args.cases, len(SENTENCES))
    report: dict = {"model": str(model), "framing": framing, "grammar": [], "sentences": []}
    for i in range(cases):
        grammar = make_speech(70_000 + i, int(args.seconds * FPS), language="en")
        generated, truth = run("grammar", grammar.wav, i)
        report["grammar"].append({"corr": corr(generated, truth)})
        wav, voice = speech(SENTENCES[i], TRAINING_VOICES[i])
        generated, truth = run("sentence", wav, i)
        n = len(generated)
        odd = np.zeros(n, bool)
        for c in plan_interleaved(n, chunk).chunks:  # the pipeline's own plan
            if c.kind == "odd":
                odd[c.output[0] : c.output[1]] = True
        row = {"voice": voice, "corr": corr(generated, truth), "odd_chunks": corr(generated[odd], truth[odd]),
               "even_chunks": corr(generated[~odd], truth[~odd]), "first_chunk": corr(generated[:chunk], truth[:chunk])}
        report["sentences"].append(row)
        print(f"case {i}: grammar {report['grammar'][-1]['corr']}, sentence {row}", file=sys.stderr, flush=True)
    report["summary"] = {
        "grammar_corr": mean([r["corr"] for r in report["grammar"]]),
        **{f"sentences_{k}": mean([r[k] for r in report["sentences"]])
           for k in ("corr", "odd_chunks", "even_chunks", "first_chunk")},
    }
    print(json.dumps(report["summary"], indent=1))
    if args.json:
        from physavatar.io.atomic import atomic_write

        with atomic_write(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
