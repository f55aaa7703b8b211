"""`physavatar generate --image IMG --audio AUDIO --out OUT.mp4`: a talking-avatar video of any length."""

from __future__ import annotations

import argparse
from pathlib import Path


def default_model_dir() -> Path:
    """The demo pipeline shipped inside the package (see docs/demo.md)."""
    return Path(__file__).resolve().parents[1] / "assets" / "demo_pipeline"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", required=True, help="reference image (jpg/png/webp; EXIF rotation, alpha and "
                        "grayscale/CMYK are handled; cropped around the face to the model's size)")
    parser.add_argument("--audio", required=True, help="speech: wav/flac/mp3/m4a/ogg, or a video's audio track; any "
                        "sample rate (resampled to 16 kHz mono). The video is exactly as long as the audio")
    parser.add_argument("--out", required=True, help="output .mp4 (H.264 + AAC); its folder is created if missing. "
                        "Beside it: OUT.plan.txt, OUT.phys.npy, OUT.json")
    parser.add_argument("--model", help="pipeline folder (save_pretrained / physavatar train); default: the shipped "
                        "demo model")
    parser.add_argument("--steps", type=int, help="denoising steps (default: the model's own setting; the demo "
                        "model: its model_index.json num_steps; paper: 50)")
    parser.add_argument("--audio-scale", type=float, help="classifier-free guidance scale of the audio (default: the "
                        "model's own setting, its model_index.json audio_scale; paper: 2.0); the unconditional audio "
                        "is all-masked")
    parser.add_argument("--plan-scale", type=float, default=1.0, help="guidance scale of the planner context "
                        "(1 = no extra pass)")
    parser.add_argument("--context-scale", type=float, default=1.1, help="VACE context scale (paper: 1.1)")
    # inference/sampler.PHYS_PASSES, spelled out so that --help does not import torch
    parser.add_argument("--phys-pass", choices=["audio", "no_audio"], default="audio",
                        help="the pass of the last denoising step that OUT.phys.npy (the predicted physical state) is "
                        "read from: audio (the paper's) or no_audio (every audio token masked, as training supervises "
                        "it); the video is the same either way (docs/demo.md)")
    parser.add_argument("--edit", help='text edit appended to the planner prompt, e.g. "more excited" (Appendix C)')
    parser.add_argument("--long-form", choices=["interleaved", "ar"], default="interleaved",
                        help="interleaved: odd chunks then even chunks by VACE interpolation (paper); ar: the "
                             "autoregressive baseline")
    parser.add_argument("--seed", type=int, default=0, help="random seed (chunk k uses a seed derived from it)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (auto: cuda when available)")
    parser.add_argument("--work-dir", help="folder for finished chunks (default: .OUT.work beside the output); a "
                        "crashed run restarted with the same arguments resumes from it")
    parser.add_argument("--skeleton", action="store_true", help="also write OUT.skeleton.mp4: the predicted "
                        "physical state drawn beside the video")
    parser.add_argument("--no-join-correction", action="store_true", help="keep colour jumps at chunk joins "
                        "(measured in OUT.json either way)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import shutil

    import torch

    from physavatar.inference.pipeline import PhysAvatarPipeline

    model = Path(args.model) if args.model else default_model_dir()
    if not model.exists():
        raise FileNotFoundError(f"{model}: no such pipeline folder; pass --model (a folder written by "
                                "`physavatar train` or PhysAvatarPipeline.save_pretrained)")
    from physavatar.device import resolve_device

    device = resolve_device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    pipe = PhysAvatarPipeline.from_pretrained(model, device=device, dtype=dtype)
    result = pipe.generate(
        args.image, args.audio, args.out, edit=args.edit, num_steps=args.steps, audio_scale=args.audio_scale,
        plan_scale=args.plan_scale, context_scale=args.context_scale, phys_pass=args.phys_pass, seed=args.seed,
        long_form=args.long_form, work_dir=args.work_dir, skeleton=args.skeleton,
        correct_joins=not args.no_join_correction,
        progress=not args.quiet,
    )
    if args.work_dir is None:  # the default work folder is ours to clean once the video is safely written
        shutil.rmtree(Path(args.out).parent / f".{Path(args.out).stem}.work", ignore_errors=True)
    print(f"wrote {result.video} ({result.num_frames} frames, {result.num_frames / 25:.2f} s)")
    if result.plan_text:
        print(f"plan: {result.plan_text}")
    for name, path in result.files.items():
        print(f"  {name}: {path}")
    return 0
