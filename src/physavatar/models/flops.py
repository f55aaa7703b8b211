"""FLOPs of one forward, counted by torch's FlopCounterMode on the meta device (no memory, no compute)."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from physavatar.config import ModelArgs
from physavatar.constants import VAE_SPATIAL_STRIDE, num_latent_frames


def example_inputs(args: ModelArgs, height: int, width: int, frames: int, *, context_len: int = 80,
                   reference_latents: int = 1, batch: int = 1, device="meta", dtype=torch.float32) -> dict:
    """Model inputs of the right shapes for a clip of `frames` video frames at height x width pixels."""
    if height % (VAE_SPATIAL_STRIDE * 2) or width % (VAE_SPATIAL_STRIDE * 2):
        raise ValueError(f"{height}x{width}: height and width must be multiples of 16 (VAE stride 8 x patch 2)")
    latents = num_latent_frames(frames) + reference_latents
    lh, lw = height // VAE_SPATIAL_STRIDE, width // VAE_SPATIAL_STRIDE
    kw = dict(device=device, dtype=dtype)
    inputs = dict(
        hidden_states=torch.randn(batch, args.in_channels, latents, lh, lw, **kw),
        timestep=torch.full((batch,), 500.0, device=device),
        control_hidden_states=torch.randn(batch, args.vace_in_channels, latents, lh, lw, **kw),
        audio_features=torch.randn(batch, frames, args.audio_dim, **kw),
        num_reference_latents=reference_latents,
    )
    if args.context_mode == "mllm":
        inputs["mllm_hidden_states"] = torch.randn(batch, context_len, args.mllm_dim, **kw)
    elif args.context_mode == "t5":
        inputs["encoder_hidden_states"] = torch.randn(batch, context_len, args.text_dim, **kw)
    return inputs


def forward_flops(model: torch.nn.Module, inputs: dict) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(**inputs)
    return counter.get_total_flops()
