"""Throughput of the offline default encoders on 2 CPU cores, and the phoneme probe.

    python benchmarks/bench_encoders.py [--seconds 10 60] [--repeats 3] [--threads 2] [--no-probe]

Prints, for each default encoder, seconds of audio processed per wall-clock second (x real time) and
video frames per second: the Whisper tiny.en audio encoder (last layer, and layers 2+4), the log-mel
baseline, and the heuristic planner (measurement + plan + MiniLM embedding, cache off). Then the
cross-voice vowel probe accuracy of Whisper tiny.en vs log-mel (see physavatar.encoders.phoneme_probe).
Timings are the best of --repeats runs (the machine is shared); the first call's load time is separate.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":  # thread counts must be fixed before numpy / torch start their pools
    _threads = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "2"
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, _threads)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import time  # noqa: E402

from _timing import best_of  # noqa: E402

import numpy as np  # noqa: E402




def _speech(seconds: float) -> np.ndarray:
    """Real synthetic speech (espeak-ng) looped to `seconds`; a tone mix if espeak-ng is missing."""
    import shutil

    from physavatar.constants import SAMPLE_RATE

    if shutil.which("espeak-ng"):
        from physavatar.encoders.phoneme_probe import synthesize

        base = synthesize("The quick brown fox jumps over the lazy dog. Then it rests, and speaks again "
                          "about the weather, the river and the long road home.", "en-us", 150)
    else:
        t = np.arange(5 * SAMPLE_RATE) / SAMPLE_RATE
        base = (0.2 * np.sin(2 * np.pi * (150 + 30 * np.sin(3 * t)) * t)).astype(np.float32)
    reps = int(np.ceil(seconds * SAMPLE_RATE / len(base)))
    return np.tile(base, reps)[: int(seconds * SAMPLE_RATE)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 60.0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-probe", action="store_true")
    args = parser.parse_args()

    import torch
    from skimage import data
    from PIL import Image

    from physavatar.constants import FPS
    from physavatar.encoders.audio import AudioEncoderConfig, load_audio_encoder
    from physavatar.encoders.planner import load_planner

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, best of {args.repeats}")
    encoders = {}
    for label, cfg in (("whisper-tiny.en (layer -1)", AudioEncoderConfig()),
                       ("whisper-tiny.en (layers 2,4)", AudioEncoderConfig(layers=(2, 4))),
                       ("logmel-80 baseline", AudioEncoderConfig(backend="logmel"))):
        t = time.perf_counter()
        encoders[label] = load_audio_encoder(cfg)
        print(f"load {label:30s} {time.perf_counter() - t:6.2f} s")

    print("(the very first load converts the CTranslate2 weights into ~/.cache/physavatar, about 3 s, once)")
    print(f"\n{'encoder':32s} {'audio s':>8s} {'wall s':>8s} {'x real time':>12s} {'frames/s':>10s}")
    for seconds in args.seconds:
        audio = _speech(seconds)
        for label, enc in encoders.items():
            enc.encode(audio[:16000])  # warm-up
            wall = best_of(lambda: enc.encode(audio), args.repeats)
            print(f"{label:32s} {seconds:8.1f} {wall:8.3f} {seconds / wall:12.1f} {seconds * FPS / wall:10.0f}")
        planner = load_planner()
        image = Image.fromarray(data.astronaut())
        t = time.perf_counter()
        planner.plan(image, audio[:16000], use_cache=False)  # loads VAD, face cascade, MiniLM
        load = time.perf_counter() - t
        wall = best_of(lambda: planner.plan(image, audio, use_cache=False), args.repeats)
        print(f"{'heuristic planner (+MiniLM)':32s} {seconds:8.1f} {wall:8.3f} {seconds / wall:12.1f} "
              f"{seconds * FPS / wall:10.0f}   ({1 / wall:.2f} plans/s; first call {load:.1f} s)")

    if not args.no_probe:
        from physavatar.encoders.phoneme_probe import VOICES, run_probe

        t = time.perf_counter()
        res = run_probe({"whisper-tiny.en (layer -1)": encoders["whisper-tiny.en (layer -1)"],
                         "whisper-tiny.en (layers 2,4)": encoders["whisper-tiny.en (layers 2,4)"],
                         "logmel-80 baseline": encoders["logmel-80 baseline"]})
        print(f"\nvowel probe: 6 vowels x 6 consonants x {len(VOICES)} espeak-ng voices, leave-one-voice-out "
              f"({time.perf_counter() - t:.1f} s)")
        print(f"{'features':32s} {'nearest centroid':>17s} {'ridge probe':>12s}")
        for label, acc in res.items():
            print(f"{label:32s} {acc['nearest_centroid']:17.3f} {acc['ridge']:12.3f}")


if __name__ == "__main__":
    main()
