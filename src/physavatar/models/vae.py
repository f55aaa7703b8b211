"""The Wan VAE with Wan's latent normalisation, and the VACE context built from it.

Latents are normalised exactly as diffusers' WanVACEPipeline does: z = (mode(E(x)) - mean) / std with the
per-channel `latents_mean` / `latents_std` of the VAE config (0 / 1 when the config has none).

VACE context (the 96-channel `control_hidden_states` for z_dim 16):
  [inactive latents (z) | reactive latents (z) | 8x8-folded generate-mask (64)], with reference-image latents
  prepended along time as [reference | zeros | mask 0].
For audio-driven generation nothing of the clip is known: the source video is all zeros and the mask all
ones, so inactive = reactive = E(zeros). For VACE frame interpolation (the even chunks of the long-form
strategy) the known frames go into the source video with mask 0 there.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from physavatar.constants import VAE_SPATIAL_STRIDE
from physavatar.models.audio import group_frames_to_latents


class LatentCodec:
    """Pixels (B, 3, F, H, W) in [-1, 1] <-> normalised latents (B, z, f, H/8, W/8)."""

    def __init__(self, vae, name: str = "vae"):
        self.vae = speed_up_on_cpu(vae.eval().requires_grad_(False))
        self.name = name
        z = vae.config.z_dim
        mean = vae.config.latents_mean or [0.0] * z
        std = vae.config.latents_std or [1.0] * z
        if len(mean) != z or len(std) != z:
            raise ValueError(f"VAE config has {len(mean)} latents_mean / {len(std)} latents_std values for z_dim={z}; "
                             "set both to z_dim per-channel statistics of its latents")
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, z, 1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, z, 1, 1, 1)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device="cpu", dtype=torch.float32) -> "LatentCodec":
        from diffusers import AutoencoderKLWan

        path = Path(path)
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"{path}: not an AutoencoderKLWan folder (no config.json); give the VAE folder")
        return cls(AutoencoderKLWan.from_pretrained(path, torch_dtype=dtype).to(device), name=path.name)

    @property
    def z_dim(self) -> int:
        return self.vae.config.z_dim

    @property
    def device(self) -> torch.device:
        return next(self.vae.parameters()).device

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        dist = self.vae.encode(video.to(self.device, next(self.vae.parameters()).dtype)).latent_dist
        z = dist.mode().float()
        return (z - self.mean.to(z.device)) / self.std.to(z.device)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        z = latents.float() * self.std.to(latents.device) + self.mean.to(latents.device)
        video = self.vae.decode(z.to(next(self.vae.parameters()).dtype)).sample
        return video.float().clamp(-1, 1)


def speed_up_on_cpu(vae: torch.nn.Module) -> torch.nn.Module:
    """Two faster kernels for the Wan VAE's no-grad float32 calls on the CPU (others unchanged; same weights and
    names, outputs equal to float rounding; benchmarks/bench_vae.py times the plain model against this one).

    - Conv3d through oneDNN: PyTorch sends a batch-1 conv3d with N*C*D*H <= 20480 to its slow native kernel (a
      rule written for 2-D convs, which never looks at the width), and every conv of the demo VAE (8-32 channels,
      a few frames at a time in the causal cache) fell there, 3-7 times slower than oneDNN on the same call.
    - WanRMS_norm by a sum of squares: F.normalize's vector norm over the channels of an (N, C, T, H, W) tensor
      took ~30 times as long as summing the squares, and once the convs were fast, 40 % of a decode."""
    try:
        from diffusers.models.autoencoders.autoencoder_kl_wan import WanRMS_norm
    except ImportError:  # another diffusers layout: leave the model as it is
        WanRMS_norm = ()
    for module in vae.modules():
        if hasattr(module, "_default_forward"):
            continue
        if (isinstance(module, torch.nn.Conv3d) and module.padding_mode == "zeros"
                and isinstance(module.padding, tuple) and torch.backends.mkldnn.is_available()):
            module._default_forward = module._conv_forward
            module._conv_forward = _onednn_conv3d.__get__(module)
        elif isinstance(module, WanRMS_norm):
            module._default_forward = module.forward
            module.forward = _rms_norm_by_sum_of_squares.__get__(module)
    return vae


def _fast_path(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_grad_enabled()


def _onednn_conv3d(conv: torch.nn.Conv3d, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    if not _fast_path(x) or weight.dtype != torch.float32:
        return conv._default_forward(x, weight, bias)
    return torch.mkldnn_convolution(x.contiguous(), weight.contiguous(), bias, conv.padding, conv.stride,
                                    conv.dilation, conv.groups)


def _rms_norm_by_sum_of_squares(norm, x: torch.Tensor) -> torch.Tensor:
    if not _fast_path(x):
        return norm._default_forward(x)
    # F.normalize(x, dim): x / max(||x||_2, 1e-12), then WanRMS_norm's own scale, gain and bias
    dim = 1 if norm.channel_first else -1
    normalized = x / x.square().sum(dim, keepdim=True).sqrt().clamp_min(1e-12)
    return normalized * norm.scale * norm.gamma + norm.bias


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (F, H, W, 3) or (B, F, H, W, 3) -> float (B, 3, F, H, W) in [-1, 1]."""
    x = torch.from_numpy(np.array(frames, dtype=np.float32)) / 127.5 - 1.0
    if x.ndim == 4:
        x = x.unsqueeze(0)
    return x.permute(0, 4, 1, 2, 3)


def tensor_to_frames(video: torch.Tensor) -> np.ndarray:
    """float (B, 3, F, H, W) in [-1, 1] -> uint8 (B, F, H, W, 3)."""
    x = ((video.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 4, 1).cpu().numpy()


def latent_generate_mask(frame_mask: torch.Tensor) -> torch.Tensor:
    """(B, F) frame mask (1 = generate, 0 = known) -> (B, f): a latent is generated if any of its frames is."""
    return group_frames_to_latents(frame_mask.float()).amax(dim=2)


def control_latents(
    inactive: torch.Tensor,
    reactive: torch.Tensor,
    frame_mask: torch.Tensor,
    reference: torch.Tensor | None = None,
    reference_every_frame: bool = False,
) -> torch.Tensor:
    """VACE context (B, 2z + 64, r + f, h, w) from latents (B, z, f, h, w) and a (B, F) generate-mask.

    reference_every_frame (a model switch, `ModelArgs.reference_every_frame`): the reactive part of every latent to
    generate is the (first) reference latent instead of the given one, so the person to animate sits at every
    position of the context, in place.
    """
    batch, _, num_latents, h, w = inactive.shape
    mask = latent_generate_mask(frame_mask).to(inactive)  # (B, f)
    if reference_every_frame:
        if reference is None:
            raise ValueError("reference_every_frame needs the reference latent")
        generate = mask.view(batch, 1, num_latents, 1, 1) > 0
        reactive = torch.where(generate, reference[:, :, :1].to(reactive), reactive)
    folded = mask.view(batch, 1, num_latents, 1, 1).expand(batch, VAE_SPATIAL_STRIDE**2, num_latents, h, w)
    context = torch.cat([inactive, reactive, folded], dim=1)
    if reference is not None:
        pad = torch.zeros_like(reference)
        ref = torch.cat([reference, pad, reference.new_zeros(batch, VAE_SPATIAL_STRIDE**2, *reference.shape[2:])], 1)
        context = torch.cat([ref, context], dim=2)
    return context


def interpolation_frame_mask(num_frames: int, tail: int, head: int) -> torch.Tensor:
    """(1, F) generate-mask of an interpolation window: m known tail frames, then new frames, n known head frames."""
    frame_mask = torch.ones(1, num_frames)
    frame_mask[:, :tail] = 0
    frame_mask[:, num_frames - head :] = 0
    return frame_mask


def known_frames_latents(codec: LatentCodec, known_video: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """E(known frames, zeros elsewhere): the inactive part of a frame-interpolation context.

    known_video: (B, 3, F, H, W) in [-1, 1], only read where frame_mask == 0 (B, F).
    """
    keep = (1.0 - frame_mask.float()).view(frame_mask.shape[0], 1, -1, 1, 1).to(known_video)
    return codec.encode(known_video * keep)


def known_frames_context(
    inactive: torch.Tensor,
    frame_mask: torch.Tensor,
    reference: torch.Tensor | None,
    zero_latents: torch.Tensor,
    reference_every_frame: bool = False,
) -> torch.Tensor:
    """Context for frame interpolation: known frames (mask 0) in the inactive part, zeros elsewhere.

    inactive: `known_frames_latents` of the window; zero_latents: E(zeros) for one clip, (1, z, f, h, w).
    """
    reactive = zero_latents.to(inactive.device).expand_as(inactive)
    reference = None if reference is None else reference.to(inactive.device)
    return control_latents(inactive, reactive, frame_mask, reference, reference_every_frame)
