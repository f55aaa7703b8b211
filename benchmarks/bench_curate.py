"""Curation throughput: hours of raw video curated per hour of wall time (2 worker processes by default).

    python benchmarks/bench_curate.py [--files 4] [--seconds 20] [--height 720] [--workers 2] [--size 512]
        [--identity-method auto] [--json out.json]

Raw videos are synthetic-world talkers (rendered at 512², scaled to --height and centred on a 16:9 canvas,
H.264 + AAC), each with one hard cut in the middle to a second identity, so every stage runs: probe,
audio, scene cuts, face tracking, identity, crop, two clip-writing passes. Rendering is not timed. The
figure is raw seconds / wall seconds of `curate` (= hours per hour); on a shared machine also read
`raw_hours_per_wall_hour_if_2_idle_cores` = 2 × raw seconds / CPU seconds used (pool workers included).
No SyncNet (no weights ship here).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402


def make_raw(folder: Path, files: int, seconds: float, height: int) -> float:
    """Write the raw videos; return their total duration in seconds."""
    import cv2

    from physavatar.constants import FPS
    from physavatar.io import write_video
    from physavatar.world import make_clip

    width = (height * 16 // 9) // 2 * 2
    half = int(seconds * FPS / 2) // 4 * 4 + 1
    total = 0.0
    for i in range(files):
        parts = [make_clip(identity_seed=2 * i + k, clip_seed=i, num_frames=half, size=512) for k in (0, 1)]
        frames = np.concatenate([p.frames for p in parts])
        canvas = np.empty((len(frames), height, width, 3), np.uint8)
        canvas[:] = frames[:, :1, :1].reshape(-1, 1, 1, 3)  # background colour of the corner
        x0 = (width - height) // 2
        for t, f in enumerate(frames):
            canvas[t, :, x0:x0 + height] = cv2.resize(f, (height, height), interpolation=cv2.INTER_LINEAR)
        wav = np.concatenate([p.wav for p in parts])
        write_video(folder / f"talk_{i:02d}.mp4", canvas, audio=wav, preset="veryfast")
        total += len(frames) / FPS
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each raw video")
    parser.add_argument("--height", type=int, default=720, help="raw video height (16:9 frames)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--identity-method", default="auto", choices=("auto", "dlib", "histogram"))
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()

    from physavatar.curation.config import CurateConfig
    from physavatar.curation.pipeline import curate

    with tempfile.TemporaryDirectory() as tmp:
        raw, out = Path(tmp) / "raw", Path(tmp) / "out"
        raw.mkdir()
        t = time.perf_counter()
        raw_s = make_raw(raw, args.files, args.seconds, args.height)
        print(f"rendered {args.files} raw videos ({raw_s:.0f} s, {args.height}p) in {time.perf_counter() - t:.0f} s")
        cfg = CurateConfig(raw_dir=str(raw), out_dir=str(out), workers=args.workers, size=args.size,
                           identity_method=args.identity_method, progress=True)
        t, c = time.perf_counter(), os.times()
        summary = curate(cfg)
        wall, c2 = time.perf_counter() - t, os.times()
        # CPU seconds of this process and its (joined) workers: load-independent, unlike wall time on a
        # shared machine; 2 cores give at most 2 CPU-seconds per wall-second
        cpu = (c2.user + c2.system + c2.children_user + c2.children_system
               - c.user - c.system - c.children_user - c.children_system)
    res = {"files": args.files, "raw_seconds": raw_s, "raw_height": args.height, "workers": args.workers,
           "size": args.size, "identity_method": args.identity_method, "wall_seconds": round(wall, 2),
           "raw_hours_per_wall_hour": round(raw_s / wall, 3), "cpu_seconds": round(cpu, 2),
           "raw_hours_per_wall_hour_if_2_idle_cores": round(2 * raw_s / cpu, 3), "clips_written": summary["clips_written"],
           "kept_seconds": round(summary["hours_written"] * 3600, 2), "drops": summary["drops"],
           "cpu_count": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2)}
    print(json.dumps(res, indent=1))
    print(f"throughput: {res['raw_hours_per_wall_hour']:.2f} h of raw {args.height}p video per hour of wall time "
          f"on {args.workers} workers ({res['clips_written']} clips kept)")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
