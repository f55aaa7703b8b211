"""Is it the pauses? Free sentences spoken straight through, against the same words in the world's layout.

    python benchmarks/probe_speech_layout.py                  # 16 sentences x 2 layouts: ~10 min on 2 cores
    python benchmarks/probe_speech_layout.py --cases 8 --json out.json

The demo model follows the world's own speech far more closely than free sentences (docs/demo.md, "How many cases
a lip figure needs"), also within speech, and the voice does not matter. One difference between the two is the
layout: a world clip is short phrases (2-8 words) with pauses of 0.3-0.8 s between them, about 29 % silence,
where a sentence runs on with 3 %. This probe speaks each of bench_demo.py's held-out sentences with a training
voice (espeak-ng at the world's default rate and pitch) twice: straight through, and cut into phrases of 2-5
words joined by 0.3-0.8 s pauses (`world.speech`'s layout). Same person, seed and scoring as
bench_demo_speech.py: lag-0 correlation of the generated mouth darkness with the truth's, over all frames and
within speech only, and the same for the truth through the model's VAE. Paired differences (pauses minus
straight) say whether the layout is what the model lacks.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_demo import SENTENCES, open_pipeline, sem, write_report  # noqa: E402
from bench_demo_speech import TRAINING_VOICES, generate_and_measure  # noqa: E402


def layouts(text: str, voice: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The sentence straight through, and as phrases of 2-5 words with 0.3-0.8 s pauses between them."""
    from physavatar.constants import SAMPLE_RATE
    from physavatar.world.speech import synthesize

    words = text.split()
    parts, pos = [], 0
    while pos < len(words):
        n = int(rng.integers(2, 6))
        parts.append(" ".join(words[pos : pos + n]))
        pos += n
    pieces = []
    for k, part in enumerate(parts):
        audio = synthesize(part, voice)
        pieces.append(audio * 0.8 / max(1e-6, float(np.abs(audio).max())))
        if k + 1 < len(parts):
            pieces.append(np.zeros(int(rng.uniform(0.3, 0.8) * SAMPLE_RATE), np.float32))
    straight = synthesize(text, voice)
    noise = lambda n: rng.standard_normal(n).astype(np.float32) * 3e-4  # noqa: E731  the world's noise floor
    paused = np.concatenate(pieces).astype(np.float32)
    straight = (straight * 0.8 / max(1e-6, float(np.abs(straight).max()))).astype(np.float32)
    return {"straight": straight + noise(len(straight)), "pauses": paused + noise(len(paused))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="pipeline folder (default: the shipped demo model)")
    parser.add_argument("--cases", type=int, default=16, help="held-out sentences (max 16)")
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args()

    from physavatar.evaluation.world_quality import lip_sync, pause_frames

    pipe, model, framing = open_pipeline(args.model)
    tmp = Path(tempfile.mkdtemp(prefix="probe_speech_layout_"))
    rows: dict[str, list[dict]] = {"straight": [], "pauses": []}
    for i in range(min(args.cases, len(SENTENCES))):
        voice = TRAINING_VOICES[i % len(TRAINING_VOICES)]
        for name, wav in layouts(SENTENCES[i], voice, np.random.default_rng(i)).items():
            gen, true, vae, truth = generate_and_measure(pipe, framing, wav, i, tmp / f"{name}_{i}.mp4")
            speech = ~pause_frames(truth.wav, len(gen))
            rows[name].append({"seconds_of_speech": round(len(wav) / 16000, 2),
                               "pause_fraction": round(float(1 - speech.mean()), 3),
                               "corr": lip_sync(gen, true)["corr"], "vae_corr": lip_sync(vae, true)["corr"],
                               "speech_only_corr": lip_sync(gen[speech], true[speech])["corr"],
                               "vae_speech_only_corr": lip_sync(vae[speech], true[speech])["corr"]})
            r = rows[name][-1]
            print(f"case {i} {name}: corr {r['corr']:.2f} (VAE {r['vae_corr']:.2f}), within speech "
                  f"{r['speech_only_corr']:.2f} (VAE {r['vae_speech_only_corr']:.2f}), "
                  f"pauses {r['pause_fraction']:.2f}", file=sys.stderr, flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    summary = {}
    for name, r in rows.items():
        summary[name] = {k: round(float(np.mean([x[k] for x in r])), 3) for k in r[0]}
        summary[name]["corr_sem"] = sem([x["corr"] for x in r])
    for k in ("corr", "speech_only_corr", "vae_corr", "vae_speech_only_corr"):
        d = [p[k] - s[k] for p, s in zip(rows["pauses"], rows["straight"])]
        summary[f"pauses_minus_straight_{k}"] = [round(float(np.mean(d)), 3), sem(d)]
    report = {"model": str(model), "cases": len(rows["straight"]), "summary": summary, "per_case": rows}
    print(json.dumps(summary, indent=1))
    write_report(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
