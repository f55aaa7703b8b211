"""Where a long interleaved video loses the person: its likeness to the reference, chunk by chunk.

    python benchmarks/probe_long_drift.py                  # 3 people, 30 s each: ~6 min on 2 cores
    python benchmarks/probe_long_drift.py --people 1 --json out.json

bench_demo.py reports the likeness of a 30-s video's first and last chunk only. Odd chunks are generated
independently from the reference (no state carries from one to the next), so a change over the video cannot be
drift in the autoregressive sense; this probe says what it is. For each new person (drawn in the model's
framing, speaking bench_demo.py's long text, padded with silence to the length asked), it generates the video
as `physavatar generate` does and the world renders the truth for the same speech; per chunk of the plan it
reports the colour-histogram correlation and PSNR to the reference of both, the chunk's kind (odd: generated
from the reference; even: interpolated between its neighbours), and how much of it is speech. Summaries: odd
against even chunks, the trend over the video (least-squares slope per 10 s) of each kind, and how closely the
generated chunks' PSNR follows the truth's (a chunk where the truth's person stands far from the reference's pose
is further from the reference in any good video).
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

from bench_demo import IDENTITY_SEEDS, LONG_TEXT, VOICES, generate, open_pipeline, speech, write_report  # noqa: E402


def chunk_rows(plan, sim: dict, sim_truth: dict, wav: np.ndarray) -> list[dict]:
    from physavatar.constants import SAMPLES_PER_FRAME

    rows = []
    for chunk in sorted(plan.chunks, key=lambda c: c.output[0]):
        a, b = chunk.output
        audio = wav[a * SAMPLES_PER_FRAME : b * SAMPLES_PER_FRAME]
        frame_rms = np.sqrt((audio[: len(audio) // SAMPLES_PER_FRAME * SAMPLES_PER_FRAME]
                             .reshape(-1, SAMPLES_PER_FRAME) ** 2).mean(1))
        rows.append({
            "index": chunk.index, "kind": chunk.kind, "frames": [a, b],
            "speech_fraction": round(float((frame_rms > 0.01).mean()) if len(frame_rms) else 0.0, 3),
            "hist": round(float(sim["hist_corr"][a:b].mean()), 4),
            "psnr_db": round(float(sim["psnr"][a:b].mean()), 3),
            "truth_hist": round(float(sim_truth["hist_corr"][a:b].mean()), 4),
            "truth_psnr_db": round(float(sim_truth["psnr"][a:b].mean()), 3),
        })
    return rows


def slope_per_10s(rows: list[dict], key: str) -> float | None:
    if len(rows) < 2:
        return None
    t = np.array([(r["frames"][0] + r["frames"][1]) / 2 / 25 for r in rows])
    y = np.array([r[key] for r in rows])
    return round(float(np.polyfit(t, y, 1)[0] * 10), 4)


def summarise(rows: list[dict]) -> dict:
    out = {}
    for kind in ("odd", "even"):
        sel = [r for r in rows if r["kind"] == kind]
        out[kind] = {"chunks": len(sel),
                     **{f"mean_{k}": round(float(np.mean([r[k] for r in sel])), 4) for k in
                        ("hist", "psnr_db", "truth_hist", "truth_psnr_db")},
                     "hist_slope_per_10s": slope_per_10s(sel, "hist"),
                     "psnr_slope_per_10s": slope_per_10s(sel, "psnr_db"),
                     "truth_psnr_slope_per_10s": slope_per_10s(sel, "truth_psnr_db")}
    gen = np.array([r["psnr_db"] for r in rows])
    truth = np.array([r["truth_psnr_db"] for r in rows])
    out["psnr_corr_with_truth"] = round(float(np.corrcoef(gen, truth)[0, 1]), 3)
    speaking = np.array([r["speech_fraction"] for r in rows])
    out["psnr_corr_with_speech_fraction"] = (round(float(np.corrcoef(gen, speaking)[0, 1]), 3)
                                             if speaking.std() > 0 else None)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="pipeline folder (default: the shipped demo model)")
    parser.add_argument("--people", type=int, default=3, help="new people, one long video each")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each video (speech padded with silence)")
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args()

    import torch

    from physavatar.evaluation import world_quality as wq
    from physavatar.inference.chunks import plan_interleaved
    from physavatar.world.clip import drive_avatar
    from physavatar.world.identity import make_identity

    pipe, model, framing = open_pipeline(args.model)
    tmp = Path(tempfile.mkdtemp(prefix="probe_long_drift_"))
    wav, voice = speech(LONG_TEXT, VOICES[0])
    n = int(args.seconds * 16000)
    wav = np.pad(wav, (0, max(0, n - len(wav))))[:n]
    people = []
    for i in range(args.people):
        # person 0 is bench_demo.py's drift person
        identity = make_identity(IDENTITY_SEEDS[0] + 1000 + i, framing)
        truth = drive_avatar(identity, wav, clip_seed=99 + i, size=int(pipe.config.size))
        gen = generate(pipe, truth.reference, truth.wav, tmp / f"long_{i}.mp4", seed=i)
        frames = gen["frames"]
        plan = plan_interleaved(len(frames), int(pipe.config.chunk_frames))
        rows = chunk_rows(plan, wq.reference_similarity(frames, truth.reference),
                          wq.reference_similarity(truth.frames[: len(frames)], truth.reference), truth.wav)
        summary = summarise(rows)
        people.append({"identity_seed": IDENTITY_SEEDS[0] + 1000 + i, "generation_s": round(gen["seconds"], 1),
                       "summary": summary, "chunks": rows})
        print(f"person {i}: odd chunks hist {summary['odd']['mean_hist']:.2f} / {summary['odd']['mean_psnr_db']:.1f} "
              f"dB, even {summary['even']['mean_hist']:.2f} / {summary['even']['mean_psnr_db']:.1f} dB; PSNR "
              f"slope per 10 s odd {summary['odd']['psnr_slope_per_10s']}, even {summary['even']['psnr_slope_per_10s']}"
              f"; follows the truth's PSNR r={summary['psnr_corr_with_truth']}", file=sys.stderr)
        for r in rows:
            print(f"  {r['index']:2d} {r['kind']:4s} {r['frames'][0]:4d}-{r['frames'][1]:4d} speech "
                  f"{r['speech_fraction']:.2f}  hist {r['hist']:.2f} (truth {r['truth_hist']:.2f})  PSNR "
                  f"{r['psnr_db']:.1f} (truth {r['truth_psnr_db']:.1f})", file=sys.stderr)
    report = {"model": str(model), "voice": voice, "seconds": args.seconds, "threads": torch.get_num_threads(),
              "people": people}
    shutil.rmtree(tmp, ignore_errors=True)  # the videos were only read back for scoring
    if args.json:
        write_report(report, args.json)
    else:
        print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
