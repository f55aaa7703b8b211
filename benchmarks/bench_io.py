"""Media I/O throughput on this machine: `python benchmarks/bench_io.py [--size 512] [--frames 81]`.

Writes an H.264/AAC clip with VideoWriter, probes it, reads it back at 25 fps (and from a 30 fps copy),
loads its audio, and fits a portrait. Prints one line per step with frames (or seconds of audio) per second.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _frames(n: int, size: int) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] / size
    return np.stack([(((np.stack([np.sin(6 * x + 0.1 * i), np.cos(4 * y), np.sin(3 * (x + y) + 0.05 * i)], -1)
                        + 1) * 127.5).astype(np.uint8)) for i in range(n)])


def main(argv: list[str] | None = None) -> None:
    from physavatar.io import fit_image, load_audio, probe_video, read_video, write_video
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--frames", type=int, default=81)
    ap.add_argument("--preset", default="medium")
    args = ap.parse_args(argv)
    frames = _frames(args.frames, args.size)
    seconds = args.frames / 25
    t = np.arange(int(seconds * 16000)) / 16000
    wav = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)

    def timed(label, fn, units, unit_name):
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        print(f"{label:<38} {dt * 1000:8.1f} ms  {units / dt:9.1f} {unit_name}/s")
        return out

    with tempfile.TemporaryDirectory() as d:
        p25, p30 = Path(d) / "clip25.mp4", Path(d) / "clip30.mp4"
        tag = f"{args.frames}x{args.size}^2"
        timed(f"write_video {tag} +AAC ({args.preset})",
              lambda: write_video(p25, frames, 25, audio=wav, preset=args.preset), args.frames, "frames")
        n30 = round(seconds * 30)
        write_video(p30, _frames(n30, args.size), 30, preset="ultrafast")
        timed("probe_video", lambda: probe_video(p25), 1, "calls")
        timed("read_video 25 -> 25 fps", lambda: read_video(p25), args.frames, "frames")
        timed("read_video 30 -> 25 fps", lambda: read_video(p30), n30, "src frames")
        timed("load_audio from mp4 (AAC -> 16 kHz)", lambda: load_audio(p25), seconds, "audio s")
    try:
        from skimage.data import astronaut
        from PIL import Image
        img = Image.fromarray(astronaut())
        timed("fit_image 512 -> 256 (face detect)", lambda: fit_image(img, 256), 1, "images")
    except ImportError:
        pass


if __name__ == "__main__":
    main()
