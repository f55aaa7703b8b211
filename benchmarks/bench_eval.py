"""Metric throughput: videos per minute of `physavatar eval` on this machine (default 2 torch threads).

Makes N synthetic talking-head videos (a real portrait from scikit-image, drifting, with a mouth that opens
with a speech-like envelope; 81 frames at 25 fps, audio muxed), evaluates them against a reference set of
the same kind with every backbone that runs offline here, and prints seconds per video for each metric
and the overall videos per minute. SyncNet has no offline weights: with --time-syncnet a random network in
the official format times the Sync path (its numbers are discarded, only the time is reported).

    python benchmarks/bench_eval.py --videos 4 --frames 81 --size 256 --threads 2 --time-syncnet
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def _make_videos(folder: Path, n: int, frames: int, size: int, seed: int) -> None:
    import cv2
    import skimage.data

    from physavatar.constants import SAMPLES_PER_FRAME
    from physavatar.io import write_video

    folder.mkdir(parents=True, exist_ok=True)
    portrait = cv2.resize(skimage.data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(seed)
    for i in range(n):
        env = np.clip(np.convolve(rng.uniform(0, 1, frames), np.ones(3) / 3, "same"), 0, 1)
        video = np.empty((frames, size, size, 3), np.uint8)
        for t in range(frames):
            f = np.roll(portrait, (int(3 * np.sin(t / 7 + i)), int(4 * np.cos(t / 9 + i))), (0, 1)).copy()
            cy, cx, w = int(0.40 * size), int(0.36 * size), max(2, size // 40)  # the astronaut's mouth
            f[cy : cy + int(env[t] * size / 40) + 1, cx - w : cx + w] = 30
            video[t] = f
        audio = 0.3 * rng.normal(size=frames * SAMPLES_PER_FRAME) * np.repeat(env, SAMPLES_PER_FRAME)
        audio = audio.astype(np.float32)
        write_video(folder / f"v{i:03d}.mp4", video, 25, audio=np.clip(audio, -1, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--metrics", default="fid,fvd,hand_c,hand_v,csim")
    parser.add_argument("--time-syncnet", action="store_true", help="also time Sync-C/D with a random SyncNet")
    parser.add_argument("--out", help="write the measurements as JSON")
    args = parser.parse_args()

    import torch

    from physavatar.evaluation.config import EvalConfig
    from physavatar.evaluation.runner import evaluate

    torch.set_num_threads(args.threads)
    metrics = tuple(m for m in args.metrics.split(",") if m)
    with tempfile.TemporaryDirectory(prefix="bench_eval_") as tmp:
        tmp = Path(tmp)
        _make_videos(tmp / "ref", args.videos, args.frames, args.size, seed=0)
        _make_videos(tmp / "gen", args.videos, args.frames, args.size, seed=1)
        syncnet = None
        if args.time_syncnet:
            from physavatar.evaluation.backbones.syncnet import SyncNetS

            syncnet = tmp / "random_syncnet.model"
            torch.save(SyncNetS().state_dict(), syncnet)
            metrics += ("sync_c", "sync_d")
        cfg = EvalConfig(metrics=metrics, syncnet_weights=str(syncnet) if syncnet else None)
        t0 = time.perf_counter()
        results, _ = evaluate({"gen": tmp / "gen"}, tmp / "ref", cfg)
        total = time.perf_counter() - t0
    r = results[0]
    per_video = {k: round(v / args.videos, 2) for k, v in r.timings_s.items() if k != "reference_set"}
    summary = {
        "videos": args.videos, "frames": args.frames, "size": args.size, "threads": args.threads,
        "metrics": list(metrics), "total_s_including_reference_set_and_model_loading": round(total, 1),
        "reference_set_s": r.timings_s.get("reference_set"),
        "generated_set_s_per_video_by_metric": per_video,
        "generated_videos_per_minute": round(60 * args.videos / max(1e-9, sum(v for k, v in r.timings_s.items()
                                                                            if k != "reference_set")), 2),
        "end_to_end_videos_per_minute": round(60 * args.videos / total, 2),
        "values": {m: res.value for m, res in r.metrics.items() if m not in ("sync_c", "sync_d")},
    }
    print(json.dumps(summary, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
