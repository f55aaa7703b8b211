"""The demo model's sampling settings against each other, on bench_demo.py's held-out cases.

    python benchmarks/probe_sampling.py                         # 6 cases x 6 settings: ~9 min on 2 cores
    python benchmarks/probe_sampling.py --cases 4 --json out.json

The exported model samples with its own settings (model_index.json: 10 steps, audio guidance 4) and the paper's
VACE context scale 1.1; the paper's own are 50 steps, audio scale 2.0, context scale 1.1 for a model trained
hundreds of times longer. Whether a small model does better with other settings is a measurement, not a guess:
every setting below generates the same cases with the same seeds (paired), and each is scored as bench_demo.py
scores the demo model (lip sync at lag 0, mouth darkness while speaking / in pauses, likeness to the reference)
plus the PSNR to the truth's frames and the frames' sharpness (mean absolute Laplacian; the truth's in the
report). Each setting's lip and PSNR figures are also given as differences from the first setting, case by case.
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

from bench_demo import (IDENTITY_SEEDS, SENTENCES, VOICES, generate, measure, mouth_series,  # noqa: E402
                        open_pipeline, people_sheet, sem, speech, write_report)
from bench_demo_windows import psnr  # noqa: E402

SETTINGS = {  # name: PhysAvatarPipeline.generate keyword arguments (the first is the reference of the differences)
    "exported": {},
    "context 1.0": {"context_scale": 1.0},
    "audio 2": {"audio_scale": 2.0},
    "audio 1 (no guidance)": {"audio_scale": 1.0},
    "audio 6": {"audio_scale": 6.0},
    "20 steps": {"num_steps": 20},
}


def sharpness(frames: np.ndarray) -> float:
    import cv2

    grey = frames.astype(np.float32).mean(-1)
    return float(np.mean([np.abs(cv2.Laplacian(g, cv2.CV_32F)).mean() for g in grey]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="pipeline folder (default: the shipped demo model)")
    parser.add_argument("--cases", type=int, default=6, help="held-out cases (bench_demo.py's first N, max 16)")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS),
                        help="which settings to run (the first is the reference of the paired differences)")
    parser.add_argument("--json", help="also write the report here")
    parser.add_argument("--people-sheet", help="write the truth and the first setting's frames of every case here "
                        "(bench_demo.py's people sheet)")
    args = parser.parse_args()

    import torch

    from physavatar.world.clip import drive_avatar
    from physavatar.world.identity import make_identity

    pipe, model, framing = open_pipeline(args.model)
    tmp = Path(tempfile.mkdtemp(prefix="probe_sampling_"))
    rows = {name: [] for name in args.settings}
    truth_sharpness, people = [], []
    for i in range(min(args.cases, len(SENTENCES))):
        wav, voice = speech(SENTENCES[i], VOICES[i % len(VOICES)])
        truth = drive_avatar(make_identity(IDENTITY_SEEDS[i], framing), wav, clip_seed=i, size=int(pipe.config.size))
        case = {"truth": truth, "wav": truth.wav}
        case["truth_dark"], case["truth_area"] = mouth_series(case, truth.frames)
        truth_sharpness.append(sharpness(truth.frames))
        for k, name in enumerate(args.settings):  # one output (and resumable work folder) per case and setting
            gen = generate(pipe, truth.reference, truth.wav, tmp / f"{i}_{k}.mp4", seed=i, **SETTINGS[name])
            n = min(len(gen["frames"]), len(truth.frames))
            m = measure(case, gen["frames"], gen["keypoints"], gen["seconds"])
            row = {"lip_corr": m["lip_sync"]["corr"], "speech_dark": m["silence"]["speech_darkness"],
                   "pause_dark": m["silence"]["pause_darkness"], "hist": m["reference_hist_corr"],
                   "ref_psnr": m["reference_psnr_db"], "truth_psnr": psnr(gen["frames"][:n], truth.frames[:n]),
                   "sharpness": sharpness(gen["frames"]), "seconds": gen["seconds"]}
            rows[name].append(row)
            if name == args.settings[0]:
                people.append({"truth": truth, "frames": gen["frames"], "truth_dark": case["truth_dark"],
                               "demo_dark": m["_dark"], "label": f"case {i}"})
            print(f"case {i} {name}: lips {row['lip_corr']:.2f}, PSNR to truth {row['truth_psnr']:.1f} dB, "
                  f"sharpness {row['sharpness']:.2f}, {gen['seconds']:.0f} s", file=sys.stderr)

    if args.people_sheet:
        people_sheet(people, Path(args.people_sheet))
    first = args.settings[0]
    report = {"model": str(model), "cases": len(truth_sharpness), "threads": torch.get_num_threads(),
              "truth_sharpness": round(float(np.mean(truth_sharpness)), 3), "settings": {}}
    for name in args.settings:
        r = rows[name]
        mean = {k: round(float(np.mean([x[k] for x in r if x[k] is not None])), 4) for k in r[0]}
        mean["lip_corr_sem"] = sem([x["lip_corr"] for x in r])
        if name != first:
            for k in ("lip_corr", "truth_psnr", "hist"):
                d = [x[k] - y[k] for x, y in zip(r, rows[first])]
                mean[f"{k}_minus_{first}"] = round(float(np.mean(d)), 4)
                mean[f"{k}_minus_{first}_sem"] = sem(d)
        report["settings"][name] = {"kwargs": SETTINGS[name], **mean}
    shutil.rmtree(tmp, ignore_errors=True)  # the videos were only read back for scoring
    print(json.dumps(report, indent=1))
    write_report(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
