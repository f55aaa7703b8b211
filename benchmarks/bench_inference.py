"""Inference figures at the demo size on the CPU (issue 7), with random weights (speed does not depend on them).

    python benchmarks/bench_inference.py [--steps 4] [--seconds 20] [--lengths 5,10,20]

Prints, each measured in its own process:
  1. seconds per denoising step and per chunk (33 frames at 128x128, demo transformer, z-16 Wan VAE);
  2. wall time of interleaved vs autoregressive long-form for one audio, with 1 and 2 processes (torchrun,
     gloo; on 2 cores each process gets one thread);
  3. peak resident memory vs video length (flat when chunks are streamed to disk and to the mp4).
Real-size GPU chunk time: see bench_model.py (--device cuda).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import numpy as np
from physavatar.inference.pipeline import PhysAvatarPipeline
from PIL import Image
pipe_dir, seconds, steps, long_form, out = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
pipe = PhysAvatarPipeline.from_pretrained(pipe_dir)
t = np.arange(int(16000 * seconds)) / 16000
wav = (0.3 * (np.sin(2 * np.pi * 3 * t) > 0) * np.sin(2 * np.pi * 180 * t)).astype(np.float32)
image = Image.fromarray((np.random.default_rng(0).random((128, 128, 3)) * 255).astype(np.uint8))
start = time.perf_counter()
result = pipe.generate(image, wav, out, num_steps=steps, long_form=long_form, progress=False)
from accelerate import PartialState
if PartialState().is_main_process:
    print(json.dumps({"wall_s": time.perf_counter() - start, "chunks": result.report.get("chunks"),
                      "timings": result.report.get("timings"),
                      "peak_rss_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_pipeline(path: Path) -> None:
    import torch
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler

    from physavatar.config import demo
    from physavatar.inference.pipeline import PhysAvatarPipeline

    torch.manual_seed(0)
    args = demo()
    args.context_mode = "none"  # the planner's cost is measured by bench_encoders.py
    vae = AutoencoderKLWan(base_dim=16, z_dim=16, dim_mult=[1, 2, 2, 4], num_res_blocks=1,
                           latents_mean=[0.0] * 16, latents_std=[1.0] * 16)
    PhysAvatarPipeline(args.build(), vae, FlowMatchEulerDiscreteScheduler(shift=5.0), size=128, chunk_frames=33,
                       audio_backend="default", planner="").save_pretrained(path)


def parts(pipe_dir: Path, repeats: int = 2) -> dict:
    """Seconds of one CFG denoising step (transformer, batch 2) and of the VAE work of one chunk."""
    import statistics

    import torch

    from physavatar.inference.pipeline import PhysAvatarPipeline
    from physavatar.models.vae import LatentCodec

    pipe = PhysAvatarPipeline.from_pretrained(pipe_dir)
    codec = LatentCodec(pipe.vae)
    video = torch.zeros(1, 3, 33, 128, 128)
    latents = codec.encode(video)
    z, f, h, w = latents.shape[1:]
    x = torch.randn(2, z, f + 1, h, w)
    control = torch.randn(2, 2 * z + 64, f + 1, h, w)
    audio = torch.randn(2, 33, pipe.transformer.config.audio_dim)

    def timed(fn):
        out = []
        for _ in range(repeats):
            start = time.perf_counter()
            with torch.no_grad():
                fn()
            out.append(time.perf_counter() - start)
        return round(statistics.median(out), 3)

    return {
        "transformer_cfg_step_s": timed(lambda: pipe.transformer(x, torch.tensor([500.0, 500.0]),
                                                                 control_hidden_states=control,
                                                                 audio_features=audio, num_reference_latents=1)),
        "vae_decode_chunk_s": timed(lambda: codec.decode(latents)),
        "vae_encode_chunk_s": timed(lambda: codec.encode(video)),
    }


def run_child(pipe: Path, seconds: float, steps: int, long_form: str, processes: int, out: Path) -> dict:
    script = out.parent / "child.py"
    script.write_text(CHILD)
    args = [str(pipe), str(seconds), str(steps), long_form, str(out)]
    if processes == 1:
        cmd = [sys.executable, str(script), *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               str(script), *args]
    # threads per process: the cores shared out (or what OMP_NUM_THREADS says), never oversubscribed
    cores = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 2))
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, cores // processes)), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    line = [x for x in done.stdout.splitlines() if x.startswith("{")][-1]
    figures = json.loads(line)
    figures["process_wall_s"] = time.perf_counter() - start
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2, help="denoising steps per chunk (50 in the paper)")
    parser.add_argument("--seconds", type=float, default=10.0, help="audio length for interleaved vs AR")
    parser.add_argument("--lengths", default="4,8,16", help="audio lengths (s) for the memory figure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_pipeline(tmp / "pipe")
        print(json.dumps({"figure": "one chunk (33 frames, 128x128)", **parts(tmp / "pipe")}))
        one = run_child(tmp / "pipe", 1.3, args.steps, "interleaved", 1, tmp / "one.mp4")
        print(json.dumps({"figure": "one chunk, whole pipeline", "steps": args.steps,
                          "seconds_per_chunk": round(one["timings"]["chunks_s"], 2)}))
        for long_form in ("interleaved", "ar"):
            for processes in (1, 2):
                out = tmp / f"{long_form}_{processes}.mp4"  # own work folder: nothing reused between runs
                r = run_child(tmp / "pipe", args.seconds, args.steps, long_form, processes, out)
                print(json.dumps({"figure": "long-form", "audio_s": args.seconds, "long_form": long_form,
                                  "processes": processes, "chunks": r["chunks"], "wall_s": round(r["wall_s"], 1)}))
        for seconds in map(float, args.lengths.split(",")):
            r = run_child(tmp / "pipe", seconds, 1, "interleaved", 1, tmp / f"len{seconds}.mp4")
            print(json.dumps({"figure": "memory", "audio_s": seconds, "chunks": r["chunks"],
                              "peak_rss_MiB": round(r["peak_rss_MiB"], 1)}))


if __name__ == "__main__":
    main()
