"""Lip sync of a demo pipeline by kind of speech: the world's own speech against free sentences.

    python benchmarks/bench_demo_speech.py --model runs/demo_portrait_stage2/pipeline --json speech.json

bench_demo_windows.py scores single windows of world test clips; bench_demo.py scores the whole pipeline on
free sentences, where the portrait candidate's lips stopped following (docs/demo.md, "Portrait framing"). This
one separates the two: every case goes through `PhysAvatarPipeline.generate` with its defaults, spoken by a new
person of the model's framing with a voice of the world's training list, and scores the correlation (lag 0) of
the generated mouth darkness with the world renderer's truth for the same speech (evaluation/world_quality):
  world      N clips of the world's English speech (`world.speech.make_speech`, new seeds), --seconds long:
             version 1 spoke small grammars only, 2 mostly word salad and made-up words, 3 the same with
             short gaps inside the phrases; kept at version 3's phrases and pauses (version 4's running
             clips left out) so that the figures stay comparable with the earlier reports
  sentences  bench_demo.py's held-out sentences, spoken by the same people with training voices
Each case's correlation is also split into its two parts: within speech only (do the lips follow the
syllables?) and the mouth's darkness while speaking / in pauses of >= 5 frames (does it shut in gaps?). For the
free sentences it also scores the frames of the odd chunks, of the interpolated even chunks and of the first chunk
alone (generated like a single window). The truth passed through the model's VAE is scored the same way
(`vae_*`): the most any model in that latent space can reach on this measure, which is lower on free sentences
than on the world's speech. `--seconds 1.32` makes each world case a single window. ~4 min per 4 cases of each
kind on 2 cores. Per case the lag-0 correlation spreads widely (-0.1 to 0.9 for the shipped model on single world
windows), so a mean over 6 cases moves by +-0.1 with the cases drawn (the summary's `*_corr_sem`): compare models
on the same cases, and on many (`--cases 16 --world-cases 24`, ~20 min).
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


def generate_and_measure(pipe, framing: str, wav: np.ndarray, i: int, out: Path, audio_scale: float | None = None):
    """Case i: bench_demo.py's person i (seed 90 000 + i, continued past its cases) speaks `wav`; the pipeline
    generates it (seed i) into `out`. Returns the mouth darkness of the generated frames, of the world's truth and of
    the truth through the model's VAE, and the truth's clip."""
    from PIL import Image

    from bench_demo import IDENTITY_SEEDS, through_vae
    from physavatar.evaluation.world_quality import mouth_darkness
    from physavatar.io.video import read_video
    from physavatar.world.clip import drive_avatar
    from physavatar.world.identity import make_identity

    truth = drive_avatar(make_identity(IDENTITY_SEEDS[0] + i, framing), wav, clip_seed=i, size=int(pipe.config.size))
    pipe.generate(Image.fromarray(truth.reference), truth.wav, out, seed=i, audio_scale=audio_scale, progress=False)
    frames = read_video(out)
    n = min(len(frames), len(truth.frames))
    kp, unit = truth.keypoints[:n], truth.identity.framing.unit
    return (mouth_darkness(frames[:n], kp, unit), mouth_darkness(truth.frames[:n], kp, unit),
            mouth_darkness(through_vae(pipe, truth.frames[:n]), kp, unit), truth)


def mean(values: list[float]) -> float:
    return round(float(np.mean(values)), 3)


def mean_or_none(values: list[float | None]) -> float | None:
    """Mean of the cases that have the figure (a case without pauses has no pause darkness)."""
    kept = [v for v in values if v is not None]
    return mean(kept) if kept else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="pipeline folder (default: the shipped demo model)")
    parser.add_argument("--cases", type=int, default=4,
                        help="cases of each kind of speech (max 16, bench_demo.py's sentences)")
    parser.add_argument("--world-cases", type=int,
                        help="world-speech cases, when more than --cases (new people and speech seeds for each; "
                        "the sentences stay at --cases): a lag-0 correlation varies widely from case to case")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each world-speech clip")
    parser.add_argument("--audio-scale", type=float,
                        help="audio guidance scale (default: the model's own, its model_index.json audio_scale; "
                        "paper: 2)")
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args()

    from bench_demo import SENTENCES, open_pipeline, sem, speech, write_report
    from physavatar.constants import FPS
    from physavatar.evaluation.world_quality import lip_sync, pause_frames
    from physavatar.inference.chunks import plan_interleaved
    from physavatar.world.speech import make_speech

    pipe, model, framing = open_pipeline(args.model)
    chunk = int(pipe.config.chunk_frames)
    tmp = Path(tempfile.mkdtemp(prefix="bench_demo_speech_"))

    def corr(generated: np.ndarray, truth: np.ndarray) -> float:
        return lip_sync(generated, truth)["corr"]  # bench_demo.py's lip-sync measure, at lag 0

    def pauses_and_syllables(generated: np.ndarray, truth: np.ndarray, vae: np.ndarray, wav: np.ndarray) -> dict:
        """Lag-0 correlation has two parts: speech against pauses (the mouth shut in gaps of >= 5 frames) and the
        syllables within speech. Scored apart, with the darkness of each in generated and true frames."""
        pauses = pause_frames(wav, len(truth))
        speech = ~pauses
        return {"pause_fraction": round(float(pauses.mean()), 3),
                "speech_only_corr": corr(generated[speech], truth[speech]),
                "vae_corr": corr(vae, truth), "vae_speech_only_corr": corr(vae[speech], truth[speech]),
                "generated_speech_pause": [round(float(generated[m].mean()), 3) if m.any() else None
                                           for m in (speech, pauses)],
                "truth_speech_pause": [round(float(truth[m].mean()), 3) if m.any() else None
                                       for m in (speech, pauses)]}

    def run(tag: str, wav: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mouth darkness of the generated frames, of the truth and of the truth through the model's VAE."""
        return generate_and_measure(pipe, framing, wav, i, tmp / f"{tag}_{i}.mp4", args.audio_scale)[:3]

    cases = min(args.cases, len(SENTENCES))
    audio_scale = float(pipe.config.audio_scale if args.audio_scale is None else args.audio_scale)
    report: dict = {"model": str(model), "framing": framing, "audio_scale": audio_scale,
                    "world_version": 3, "world": [], "sentences": []}
    world_cases = max(cases, args.world_cases or 0)
    for i in range(world_cases):
        world = make_speech(70_000 + i, int(args.seconds * FPS), language="en", running_p=0.0)  # version 3
        generated, truth, vae = run("world", world.wav, i)
        report["world"].append({"corr": corr(generated, truth), **pauses_and_syllables(generated, truth, vae,
                                                                                       world.wav),
                                "text": world.text})
        if i >= cases:
            print(f"case {i}: world {report['world'][-1]['corr']}", file=sys.stderr, flush=True)
            continue
        wav, voice = speech(SENTENCES[i], TRAINING_VOICES[i % len(TRAINING_VOICES)])
        generated, truth, vae = run("sentence", wav, i)
        n = len(generated)
        odd = np.zeros(n, bool)
        for c in plan_interleaved(n, chunk).chunks:  # the pipeline's own plan
            if c.kind == "odd":
                odd[c.output[0] : c.output[1]] = True
        row = {"voice": voice, "corr": corr(generated, truth), "odd_chunks": corr(generated[odd], truth[odd]),
               "even_chunks": corr(generated[~odd], truth[~odd]), "first_chunk": corr(generated[:chunk], truth[:chunk]),
               "vae_first_chunk": corr(vae[:chunk], truth[:chunk]), **pauses_and_syllables(generated, truth, vae, wav)}
        report["sentences"].append(row)
        print(f"case {i}: world {report['world'][-1]['corr']}, sentence {row}", file=sys.stderr, flush=True)
    report["summary"] = {
        # the spread of a mean over few cases: per case the correlation ranges widely
        **{f"{kind}_corr_sem": sem([r["corr"] for r in report[kind]])
           for kind in ("world", "sentences") if len(report[kind]) > 1},
        **{f"world_{k}": mean([r[k] for r in report["world"]])
           for k in ("corr", "speech_only_corr", "vae_corr", "vae_speech_only_corr", "pause_fraction")},
        **{f"sentences_{k}": mean([r[k] for r in report["sentences"]])
           for k in ("corr", "speech_only_corr", "vae_corr", "vae_speech_only_corr", "pause_fraction", "odd_chunks",
                     "even_chunks", "first_chunk", "vae_first_chunk")},
        **{f"{kind}_{who}_speech_pause": [mean_or_none([r[f"{who}_speech_pause"][j] for r in report[kind]])
                                          for j in (0, 1)]
           for kind in ("world", "sentences") for who in ("generated", "truth")},
    }
    print(json.dumps(report["summary"], indent=1))
    write_report(report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
