"""Throughput of the default pose encoder (MediaPipe landmarkers -> 127 keypoints -> 4 x 256 tokens).

    python benchmarks/bench_pose.py [--frames 25] [--repeats 3] [--size 256 512] [--cores 2]

Prints frames per second of `load_pose_encoder("mediapipe")` in VIDEO mode (tracking, how clips are
extracted) and IMAGE mode (each frame alone), on synthetic-world clips (which contain a full upper body with
both hands) and on skimage's astronaut photo (a real person, no hands visible) repeated as a still video.
Also the split of one IMAGE-mode frame between the three landmarkers, and the one-off load time.
The process is pinned to --cores CPU cores (default 2, the development machine). Timings are the best of
--repeats runs (the machine is shared). The X-Pose backend cannot run here and is not benchmarked.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":  # fix thread pools before numpy / mediapipe start them
    _cores = int(sys.argv[sys.argv.index("--cores") + 1]) if "--cores" in sys.argv else 2
    if hasattr(os, "sched_setaffinity"):
        _avail = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, _avail[: max(1, _cores)])
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(_cores))

import argparse  # noqa: E402
import time  # noqa: E402

from _timing import best_of  # noqa: E402

import numpy as np  # noqa: E402




def _world_frames(frames: int, size: int) -> np.ndarray | None:
    try:
        from physavatar.world import make_clip

        return make_clip(identity_seed=1, clip_seed=5, num_frames=frames, size=size).frames
    except Exception as err:  # noqa: BLE001 - espeak-ng missing etc.: skip that input
        print(f"  (world clip {size}px unavailable: {err})")
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=25, help="frames per clip (25 = one second of video)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", type=int, nargs="+", default=[256, 512], help="world clip sizes")
    ap.add_argument("--cores", type=int, default=2, help="CPU cores to pin to (applied at start-up)")
    args = ap.parse_args(argv)

    from physavatar.encoders.pose import load_pose_encoder
    from physavatar.encoders.pose_mediapipe import MediaPipePoseEncoder

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"pose encoder throughput, mediapipe backend, {cores} CPU core(s), {args.frames} frames per clip")

    t = time.perf_counter()
    enc = load_pose_encoder("mediapipe", mode="image")
    enc.encode_frames(np.zeros((64, 64, 3), np.uint8))  # builds the IMAGE-mode landmarkers
    print(f"  load (3 landmarkers, first call): {time.perf_counter() - t:.2f} s")

    inputs = []
    for size in args.size:
        frames = _world_frames(args.frames, size)
        if frames is not None:
            inputs.append((f"world clip {size}x{size}", frames))
    import skimage.data

    inputs.append(("astronaut 512x512 (still)", np.repeat(skimage.data.astronaut()[None], args.frames, 0)))

    video = load_pose_encoder("mediapipe", mode="video")
    print(f"  {'input':28s} {'VIDEO fps':>10s} {'IMAGE fps':>10s}   parts found (VIDEO, last run)")
    for name, frames in inputs:
        video_s = best_of(lambda: video.encode_frames(frames), args.repeats)
        image_s = best_of(lambda: enc.encode_frames(frames), args.repeats)
        feats = video.encode_frames(frames)
        found = (feats.keypoints[..., 2].reshape(len(frames), -1) > 0)
        parts = {"body": slice(0, 17), "face": slice(17, 85), "lhand": slice(85, 106), "rhand": slice(106, 127)}
        share = " ".join(f"{p} {found[:, s].any(1).mean():.0%}" for p, s in parts.items())
        print(f"  {name:28s} {len(frames) / video_s:10.1f} {len(frames) / image_s:10.1f}   {share}")

    # Split of one IMAGE-mode frame between the landmarkers (the largest world clip, else the photo).
    import mediapipe as mp

    assert isinstance(enc, MediaPipePoseEncoder)
    pose, face, hand = enc._image_landmarkers
    frame = np.ascontiguousarray(inputs[-2][1][0] if len(inputs) > 1 else inputs[-1][1][0])
    image = mp.Image(image_format=mp.ImageFormat.SRGB, data=frame)
    split = {n: best_of(lambda m=m: m.detect(image), args.repeats * 3) for n, m in
             (("pose", pose), ("face", face), ("hands", hand))}
    print("  one IMAGE-mode frame: " + ", ".join(f"{n} {1000 * s:.0f} ms" for n, s in split.items()))
    enc.close()
    video.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
