"""`physavatar extract DATASET`: the offline features training reads (audio, plans, VAE latents, pose)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="a clip dataset folder (manifest.jsonl + clips/), from `physavatar world make` "
                        "or `physavatar curate`")
    parser.add_argument("--audio", default="default", choices=["default", "whisper", "logmel", "none"],
                        help="audio encoder backend (default: offline Whisper tiny.en; whisper: a local Whisper "
                             "folder, see docs/encoders.md); 'none' to skip audio features")
    parser.add_argument("--planner", default="default", help="planner backend: default (heuristic) or qwen-omni; "
                        "'none' to skip plans")
    parser.add_argument("--vae", help="AutoencoderKLWan folder; without it no latents are computed")
    parser.add_argument("--pose", default="mediapipe", help="pose backend for clips without phys_tokens.npy "
                        "(mediapipe or xpose); 'none' to skip")
    parser.add_argument("--known-frames", default="5,4", help="M,N: also encode each clip with only its first M and "
                        "last N frames kept, the context of training's frame-interpolation steps (match the config's "
                        "data.tail_frames,data.head_frames); 'none' to skip (training then encodes them as it goes)")
    parser.add_argument("--split", help="only clips of this split (train/val/test)")
    parser.add_argument("--shard", default="0/1", help="K/N: only every N-th clip starting at K, so N processes "
                        "share the work (e.g. 0/2 and 1/2 on two cores); each process then uses 1/N of the cores "
                        "unless OMP_NUM_THREADS says otherwise")
    parser.add_argument("--device", default="auto", help="where the VAE encodes: auto (CUDA when there is one, "
                        "default), cpu, cuda, cuda:1, ...")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


@contextmanager
def _threads_for_shards(shards: int) -> Iterator[None]:
    """1/shards of the cores for this process's torch, unless OMP_NUM_THREADS is set. Shards that each take every
    core wait on each other: two shards of the demo VAE's encode on 2 cores took 3.5 s per clip that way, 0.5 s
    with one thread each (docs/demo.md)."""
    if shards <= 1 or "OMP_NUM_THREADS" in os.environ:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // shards))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run(args: argparse.Namespace) -> int:
    from physavatar.data.features import extract_features

    try:
        shard = tuple(int(x) for x in args.shard.split("/"))
        assert len(shard) == 2
    except (ValueError, AssertionError):
        raise ValueError(f"--shard {args.shard!r}: write K/N, e.g. 0/2") from None

    known_frames = None
    if args.known_frames != "none":
        try:
            known_frames = tuple(int(x) for x in args.known_frames.split(","))
            assert len(known_frames) == 2 and min(known_frames) >= 0
        except (ValueError, AssertionError):
            raise ValueError(f"--known-frames {args.known_frames!r}: write M,N (e.g. 5,4) or none") from None
    with _threads_for_shards(shard[1]):
        report = extract_features(
            args.dataset, audio_backend=None if args.audio == "none" else args.audio,
            planner=None if args.planner == "none" else args.planner,
            vae=args.vae, pose=None if args.pose == "none" else args.pose, split=args.split, shard=shard,
            known_frames=known_frames, progress=not args.quiet, device=args.device,
        )
    written = ", ".join(f"{k} {v}" for k, v in report.written.items())
    print(f"{report.clips} clips: wrote {written}; skipped {len(report.skipped)}")
    for line in report.skipped[:20]:
        print(f"  skipped {line}")
    return 0 if len(report.skipped) < report.clips or report.clips == 0 else 1
