"""`physavatar info`: build a model preset and print what it is made of."""

from __future__ import annotations

import argparse
import time

from physavatar.config import PRESETS, LoraArgs, preset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS),
                        help="model size: tiny (tests), demo (shipped CPU model), vace-1.3b (the paper's)")
    parser.add_argument("--lora-rank", type=int, default=128, help="LoRA rank for the trainable-set summary (paper: 128)")
    parser.add_argument("--lora-alpha", type=int, default=64, help="LoRA alpha (paper: 64)")
    parser.add_argument("--height", type=int, default=512, help="frame height in pixels for the FLOP count")
    parser.add_argument("--width", type=int, default=512, help="frame width in pixels for the FLOP count")
    parser.add_argument("--frames", type=int, default=81, help="video frames per chunk (1 + 4k) for the FLOP count")


def run(args: argparse.Namespace) -> int:
    import torch

    from physavatar.models.flops import example_inputs, forward_flops
    from physavatar.models.lora import add_lora, parameter_summary

    model_args = preset(args.preset)
    start = time.perf_counter()
    # The meta device builds even the 1.3B model instantly and without memory; counts and FLOPs need no data.
    with torch.device("meta"):
        model = model_args.build()
        flops = forward_flops(model, example_inputs(model_args, args.height, args.width, args.frames))
        add_lora(model, LoraArgs(rank=args.lora_rank, alpha=args.lora_alpha))
    summary = parameter_summary(model)
    print(f"PhysAvatarTransformer3DModel, preset {args.preset!r}")
    print(f"blocks: {model_args.num_layers} main + {len(model_args.vace_layers)} VACE, dim {model_args.dim}, "
          f"{model_args.num_attention_heads} heads, J_Phys {model_args.phys_layer}, context {model_args.context_mode}"
          f" ({model_args.mllm_blocks} blocks)")
    print(summary.format())
    print(f"forward at {args.height}x{args.width}x{args.frames} frames (+1 reference latent): "
          f"{flops / 1e12:,.3f} TFLOP")
    print(f"built in {time.perf_counter() - start:.1f} s")
    return 0
