"""Benchmark the synthetic world on one core: render fps per size, and the cost of a whole 81-frame clip.

    python benchmarks/bench_world.py [--sizes 128 256 512] [--repeats 3]

Pins OpenCV to one thread; run it with OMP_NUM_THREADS=1 for a clean one-core figure (it sets that itself
before numpy is imported when run as a script).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402

from _timing import best_of  # noqa: E402

import cv2  # noqa: E402

from physavatar.world.behaviour import audio_features, drive  # noqa: E402
from physavatar.world.body import pose_keypoints  # noqa: E402
from physavatar.world.clip import make_clip  # noqa: E402
from physavatar.world.identity import make_identity  # noqa: E402
from physavatar.world.render import Renderer  # noqa: E402
from physavatar.world.speech import make_speech  # noqa: E402




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    identity = make_identity(7)
    speech = make_speech(7, args.frames)
    motion = drive(audio_features(speech.wav), identity.style, 7)
    kp, rig = pose_keypoints(identity, motion)
    print(f"one core, {args.frames}-frame clip, best of {args.repeats}")
    t_speech = best_of(lambda: make_speech(8, args.frames), args.repeats)
    t_motion = best_of(
        lambda: pose_keypoints(identity, drive(audio_features(speech.wav), identity.style, 7)), args.repeats
    )
    print(f"  speech synthesis (espeak-ng)   {t_speech * 1000:7.1f} ms")
    print(f"  audio -> behaviour -> keypoints {t_motion * 1000:6.1f} ms")
    for size in args.sizes:
        renderer = Renderer(identity, size)
        t = best_of(lambda: renderer.video(rig), args.repeats)
        print(f"  render {size:3d}x{size:<3d}  {t * 1000:7.1f} ms/clip  {args.frames / t:7.1f} frames/s")
    for size in args.sizes[:1]:
        t = best_of(lambda: make_clip(7, 7, args.frames, size), args.repeats)
        print(f"  whole clip at {size} (speech + motion + render + tokens + reference) {t * 1000:.1f} ms")


if __name__ == "__main__":
    main()
