"""Discrete half of the objective: Algorithm 1 (noise-based audio masked ratio modulation) and eq. 4.

Conventions (paper §3.3): an audio mask M_aud in {0, 1}^f has one entry per video latent frame, 0 = the
audio token is masked (replaced by the mask embedding), 1 = visible. Eq. 4 supervises the physical-state
projector exactly where M_aud == 0, so `supervision_mask(M_aud)` is the boolean of masked positions.

The three training variants map onto (audio mask, supervision mask) pairs:
  "discrete" (ours)  Algorithm 1 per sample;           supervise where masked.
  "full"     (Table 2 "J_Phys = 15 (Full)")           all audio visible, supervise every latent. The paper
             only says "full physical state supervision"; we read it as Proj_Phys supervised at every latent
             while the audio stays fully visible (standard REPA-style alignment, no discrete diffusion).
  "no_audio"                                           every audio token masked, supervise every latent.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from physavatar.constants import (
    PHYS_FRAME_DIM,
    PHYS_TOKEN_DIM,
    PHYS_TOKENS_PER_FRAME,
    VAE_TEMPORAL_STRIDE,
    num_video_frames,
)

MaskMode = Literal["discrete", "full", "no_audio"]


def _check_num_latents(num_latents: int) -> None:
    if not isinstance(num_latents, int) or num_latents < 1:
        raise ValueError(f"num_latents={num_latents!r} must be a positive int (81 frames -> 21 latents)")


def _check_cpu_generator(generator: torch.Generator | None) -> None:
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(
            f"generator is on {generator.device}; pass a CPU torch.Generator (masks are drawn on CPU so a seed "
            f"gives the same masks on every device)"
        )


def audio_mask(sigmas: torch.Tensor, num_latents: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Algorithm 1, batched: (B,) sigmas of the sampled step -> (B, f) long mask, 0 = masked, 1 = visible.

    Per sample: P = 1 - sigma; p ~ U(0, P); n = floor(f * p); n unique indices uniformly at random are set
    to 0. At pure noise (sigma = 1) nothing is masked; near clean latents (sigma -> 0) up to f - 1 tokens are
    masked, on average a fraction (1 - sigma) / 2 (less the floor's bias). Randomness comes only from
    `generator` (a CPU generator: draws happen on CPU, so a seed gives the same masks on every device); the
    mask is returned on the device of `sigmas`.
    """
    _check_num_latents(num_latents)
    _check_cpu_generator(generator)
    sigmas = torch.as_tensor(sigmas)
    if sigmas.ndim != 1 or sigmas.numel() == 0:
        raise ValueError(f"sigmas has shape {tuple(sigmas.shape)}; give one sigma per sample, shape (B,)")
    s = sigmas.detach().to("cpu", torch.float64)
    if not bool(((s >= 0) & (s <= 1)).all()):
        raise ValueError(
            f"sigmas must lie in [0, 1] (flow-matching noise levels); got values in [{s.min().item()}, "
            f"{s.max().item()}]: pass the sampled step's sigma, not its timestep (sigma * 1000)"
        )
    batch = s.shape[0]
    # 1. maximum masked probability and the sampled ratio p = u * P, u ~ U[0, 1)
    max_prob = 1.0 - s
    ratio = torch.rand(batch, generator=generator, dtype=torch.float64) * max_prob
    # 2. number of masked tokens
    n_masked = torch.floor(num_latents * ratio).long()  # (B,)
    # 3. n unique indices, uniformly: the ranks of i.i.d. uniforms form a uniform random permutation, and
    #    the positions whose rank is < n are a uniform n-subset (one vectorised draw for the whole batch)
    scores = torch.rand(batch, num_latents, generator=generator)
    ranks = scores.argsort(dim=1).argsort(dim=1)  # (B, f), each row a permutation of 0..f-1
    mask = (ranks >= n_masked[:, None]).long()  # 1 visible, 0 masked
    return mask.to(sigmas.device)


def full_supervision_mask(batch: int, num_latents: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The "Full" ablation's audio mask: (B, f) all ones (audio never masked). Pair it with
    `torch.ones(B, f, dtype=torch.bool)` as supervision (see `training_masks(mode="full")`)."""
    _check_num_latents(num_latents)
    return torch.ones(batch, num_latents, dtype=torch.long, device=device)


def no_audio_mask(batch: int, num_latents: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Every audio token masked: (B, f) all zeros (0 = masked), so eq. 4 supervises every latent."""
    _check_num_latents(num_latents)
    return torch.zeros(batch, num_latents, dtype=torch.long, device=device)


def supervision_mask(audio_mask_: torch.Tensor) -> torch.Tensor:
    """Eq. 4's indicator 1[M_aud = 0]: (B, f) bool, True where the physical state is supervised."""
    return audio_mask_ == 0


def training_masks(
    mode: MaskMode, sigmas: torch.Tensor, num_latents: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(audio_mask (B, f) long, supervise (B, f) bool) for one training variant (see the module docstring)."""
    sigmas = torch.as_tensor(sigmas)
    if mode == "discrete":
        m = audio_mask(sigmas, num_latents, generator)
        return m, supervision_mask(m)
    if sigmas.ndim != 1 or sigmas.numel() == 0:
        raise ValueError(f"sigmas has shape {tuple(sigmas.shape)}; give one sigma per sample, shape (B,)")
    batch = sigmas.shape[0]
    if mode == "full":
        m = full_supervision_mask(batch, num_latents, sigmas.device)
        return m, torch.ones_like(m, dtype=torch.bool)
    if mode == "no_audio":
        m = no_audio_mask(batch, num_latents, sigmas.device)
        return m, supervision_mask(m)
    raise ValueError(f"mode={mode!r}: use 'discrete' (Algorithm 1), 'full' or 'no_audio'")


def phys_targets(tokens: torch.Tensor, num_latents: int) -> torch.Tensor:
    """Per-frame physical-state tokens -> per-latent targets, (B, F, 4, 256) or (B, F, 1024) -> (B, f, 4, 1024).

    Appendix B: latent 0 encodes frame 0 alone, so its 4 target slots are frame 0 repeated 4 times; latent
    i >= 1 encodes frames 4i-3 ... 4i. For F = 81 that is 84 reference tokens, i.e. (B, 21, 4, 1024).
    """
    _check_num_latents(num_latents)
    expected_frames = num_video_frames(num_latents)
    if tokens.ndim == 4 and tuple(tokens.shape[2:]) == (PHYS_TOKENS_PER_FRAME, PHYS_TOKEN_DIM):
        tokens = tokens.flatten(2)  # (B, F, 4 parts * 256) = (B, F, 1024), parts in PHYS_PARTS order
    if tokens.ndim != 3 or tokens.shape[2] != PHYS_FRAME_DIM:
        raise ValueError(
            f"physical-state tokens have shape {tuple(tokens.shape)}; give (B, F, {PHYS_TOKENS_PER_FRAME}, "
            f"{PHYS_TOKEN_DIM}) or (B, F, {PHYS_FRAME_DIM})"
        )
    if tokens.shape[1] != expected_frames:
        raise ValueError(
            f"physical-state tokens cover {tokens.shape[1]} frames but {num_latents} latents need "
            f"1 + {VAE_TEMPORAL_STRIDE}*({num_latents}-1) = {expected_frames} frames; give the clip's per-frame tokens"
        )
    # prepend 3 more copies of frame 0: [f0 f0 f0 f0 f1 ... f_{F-1}] has 4*f frames, latent i = rows 4i..4i+3
    first = tokens[:, :1].expand(-1, VAE_TEMPORAL_STRIDE - 1, -1)
    padded = torch.cat([first, tokens], dim=1)  # (B, 4f, 1024)
    return padded.reshape(tokens.shape[0], num_latents, VAE_TEMPORAL_STRIDE, PHYS_FRAME_DIM)


def discrete_loss(pred: torch.Tensor, target: torch.Tensor, supervise: torch.Tensor) -> torch.Tensor:
    """Eq. 4: MSE between Proj_Phys(e_J_Phys) and the reference tokens, only at supervised latents.

    pred, target: (B, f, ...) e.g. (B, f, 4, 1024); supervise: (B, f) bool (True = supervised, i.e. audio
    masked). Averaged over the supervised elements, in float32. With nothing supervised the loss is exactly
    0 and still part of the graph (its gradient is zero), so every rank can call backward on it. Unsupervised
    positions get exactly zero gradient, even where the prediction is non-finite.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")
    if pred.ndim < 2 or tuple(supervise.shape) != tuple(pred.shape[:2]):
        raise ValueError(
            f"supervise mask has shape {tuple(supervise.shape)}; give a (B, f) mask matching pred's leading "
            f"dims {tuple(pred.shape[:2])}"
        )
    keep = supervise.to(device=pred.device, dtype=torch.bool).reshape(*supervise.shape, *([1] * (pred.ndim - 2)))
    target = target.detach().float()
    # select before the subtraction: unsupervised entries become the target itself (zero error), and where()
    # routes exactly zero gradient to them; masking after the square would give 0 * inf = NaN gradients
    chosen = torch.where(keep, pred.float(), target)
    err = (chosen - target).square()
    count = keep.sum() * math.prod(pred.shape[2:])
    return err.sum() / count.clamp(min=1).to(err.dtype)
